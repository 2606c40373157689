"""The backbone contract, for every registered backbone (parametrized over the registry), in float64:
full forward = step loop = chunked forwards with the state carried; causality; gradients."""

from __future__ import annotations

import pytest
import torch

from seqrl.agents.backbones import BackboneConfig, available_backbones, build_backbone
from seqrl.agents.backbones.scan import log_space_scan, sequential_scan
from seqrl.core.errors import SeqRLError

from helpers import backbone_options

T, B, D = 24, 3, 16
TOL = 1e-6


SCAN_BACKBONES = ("mingru", "minlstm", "mamba")  # run once per scan implementation
# "name:variant" -> (backbone, option values): every contract test runs on these too
VARIANTS = {**{f"{n}:log": (n, {"scan": "log"}) for n in SCAN_BACKBONES}, "transformer:rope": ("transformer", {"pos": "rope"})}


def make(name: str, max_tokens: int = 64, n_layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    name, values = VARIANTS.get(name, (name, {}))
    cfg = BackboneConfig(width=D, n_layers=n_layers, dropout=0.0, max_tokens=max_tokens,
                         options=backbone_options(name, **{"n_heads": 2, "scan": "auto", **values}))
    return build_backbone(name, cfg).double().eval()


def inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.fixture(params=available_backbones() + list(VARIANTS))
def name(request) -> str:
    return request.param


def test_registry_holds_the_issue_backbones():
    assert {"transformer", "mingru"} <= set(available_backbones())
    with pytest.raises(SeqRLError, match="Unknown backbone 'mingur'. Did you mean 'mingru'.*Known backbones"):
        build_backbone("mingur", BackboneConfig(width=8, n_layers=1, dropout=0.0, max_tokens=59))


@torch.no_grad()
def test_forward_equals_step_loop(name):
    m, x = make(name), inputs()
    y_full, s_full = m(x)
    state, ys = m.initial_state(B), []
    for t in range(T):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
    assert (torch.stack(ys, 1) - y_full).abs().max().item() <= TOL
    # the final states agree too: one more token after either gives the same output
    x_next = torch.randn(B, D, dtype=torch.float64)
    assert (m.step(x_next, state)[0] - m.step(x_next, s_full)[0]).abs().max().item() <= TOL


@torch.no_grad()
def test_chunked_forward_with_carried_state(name):
    m, x = make(name), inputs()
    y_full, _ = m(x)
    state, ys = m.initial_state(B), []
    for lo, hi in [(0, 5), (5, 6), (6, T)]:  # three uneven chunks
        y, state = m(x[:, lo:hi], state)
        ys.append(y)
    assert (torch.cat(ys, 1) - y_full).abs().max().item() <= TOL


@torch.no_grad()
def test_initial_state_equals_no_state(name):
    m, x = make(name), inputs()
    assert (m(x, m.initial_state(B))[0] - m(x)[0]).abs().max().item() <= TOL


@torch.no_grad()
@pytest.mark.parametrize("t", [0, 7, T - 2])
def test_causal(name, t):
    m, x = make(name), inputs()
    x2 = x.clone()
    x2[:, t + 1 :] += torch.randn_like(x2[:, t + 1 :])
    y1, y2 = m(x)[0], m(x2)[0]
    assert (y1[:, : t + 1] - y2[:, : t + 1]).abs().max().item() <= TOL
    assert (y1[:, t + 1 :] - y2[:, t + 1 :]).abs().max().item() > 1e-3  # the change does reach later outputs


def test_gradients_reach_every_parameter(name):
    m = make(name).train()
    y, _ = m(inputs())
    y.pow(2).mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_log_space_scan_matches_loop_with_and_without_h0():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 50, 4, generator=g, dtype=torch.float64) * 0.98 + 0.01
    b = torch.rand(2, 50, 4, generator=g, dtype=torch.float64) + 0.01
    h0 = torch.rand(2, 4, generator=g, dtype=torch.float64)
    ref = sequential_scan(a, b)
    assert torch.allclose(log_space_scan(a.log(), b.log()).exp(), ref, atol=1e-10)
    ref0 = sequential_scan(a, b, h0)
    assert torch.allclose(log_space_scan(a.log(), b.log(), h0.log()).exp(), ref0, atol=1e-10)


@torch.no_grad()
@pytest.mark.parametrize("variant", ["transformer", "transformer:rope"])
def test_transformer_forward_with_state_equals_step_loop_beyond_its_span(variant):
    """DT's evaluation re-runs the last ``max_tokens`` tokens at every step; chunked calls with the
    carried buffer must give exactly that, even when buffer + chunk exceed the span."""
    m = make(variant, max_tokens=8, n_layers=3)
    x = inputs()
    state, ys = m.initial_state(B), []
    for t in range(T):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
        # the step is a fresh pass over the last 8 tokens
        assert (y_t - m(x[:, max(0, t - 7) : t + 1])[0][:, -1]).abs().max().item() <= TOL
    state, chunks = m.initial_state(B), []
    for lo, hi in [(0, 3), (3, 6), (6, 15), (15, T)]:
        y, state = m(x[:, lo:hi], state)
        chunks.append(y)
    assert (torch.cat(chunks, 1) - torch.stack(ys, 1)).abs().max().item() <= TOL


@torch.no_grad()
def test_rope_gives_attention_the_order_that_no_position_lacks():
    """One layer without positions: the last token's output ignores the order of the tokens before it (the
    CPU protocol's Transformer, no timestep embedding, is blind to it). With rope it does not, and a logit
    depends on the offset i - j only (RoFormer eq. 16): the same rotated pair 10 positions later scores the same."""
    from seqrl.agents.backbones.transformer import rotary

    x = inputs()
    shuffled = torch.cat([x[:, :-1].flip(1), x[:, -1:]], 1)  # the earlier tokens reversed, the last one kept
    for variant, same in (("transformer", True), ("transformer:rope", False)):
        m = make(variant, n_layers=1)
        gap = (m(x)[0][:, -1] - m(shuffled)[0][:, -1]).abs().max().item()
        assert (gap <= TOL) if same else (gap > 1e-3), (variant, gap)
    q, k = torch.randn(2, 1, 1, 20, 8, dtype=torch.float64).unbind(0)
    q, k = q.repeat(1, 1, 2, 1), k.repeat(1, 1, 2, 1)  # positions 20..39 hold what 0..19 hold
    logits = rotary(q) @ rotary(k).transpose(-1, -2)
    assert (logits[..., 20:, 20:] - logits[..., :20, :20]).abs().max().item() <= 1e-12
    assert (logits[..., 20:, :20] - logits[..., :20, :20]).abs().max().item() > 1e-3  # but not across offsets


@torch.no_grad()
def test_plain_ops_compute_the_same_function(name, monkeypatch):
    """Inside ``plain_ops()`` (what exported policies are traced in: no native kernel, FFT or complex
    tensor) a backbone gives the default path's outputs, whole and chunked with the state carried."""
    from seqrl.agents.backbones import native_scan
    from seqrl.agents.backbones.plain import plain_ops

    m, x = make(name), inputs()
    y_ref, _ = m(x)

    def no_native(*args):
        raise AssertionError("a native kernel was called inside plain_ops()")

    monkeypatch.setattr(native_scan, "_kernel", no_native)
    monkeypatch.setattr(torch.fft, "rfft", no_native)
    with plain_ops():
        y_plain, _ = m(x)
        state, ys = m.initial_state(B), []
        for lo, hi in [(0, 1), (1, 3), (3, T)]:
            y, state = m(x[:, lo:hi], state)
            ys.append(y)
        state, steps = m.initial_state(B), []
        for t in range(T):
            y_t, state = m.step(x[:, t], state)
            steps.append(y_t)
    for y in (y_plain, torch.cat(ys, 1), torch.stack(steps, 1)):
        assert (y - y_ref).abs().max().item() <= TOL


def test_a_mixer_must_implement_the_protocol():
    """Mixer's abstract methods are enforced: a subclass missing one cannot be instantiated."""
    from seqrl.agents.backbones.stack import Mixer

    class NoState(Mixer):
        def forward(self, x, state=None):
            return x, state

    class NoForward(Mixer):
        def initial_state(self, batch, device, dtype):
            return None

    for cls, missing in ((NoState, "initial_state"), (NoForward, "forward")):
        with pytest.raises(TypeError, match=f"abstract.*{missing}"):
            cls()

    class Whole(NoState):
        def initial_state(self, batch, device, dtype):
            return None

    assert Whole()(torch.ones(1, 2, 3))[0].shape == (1, 2, 3)


def test_options_live_with_their_backbone():
    """Each backbone's options class is registered with it; a backbone refuses another's options."""
    from dataclasses import fields

    from seqrl.agents.backbones import options_class
    from seqrl.agents.backbones.mingru import MinGRUOptions
    from seqrl.agents.backbones.transformer import TransformerOptions

    have = {b: [f.name for f in fields(options_class(b))] for b in ("mingru", "minlstm", "mamba", "s4d", "transformer",
                                                                     "urlstm", "gru", "lstm")}
    assert have == {"mingru": ["gate", "scan"], "minlstm": ["gate", "scan"], "mamba": ["d_state", "dt_min", "dt_max", "scan"],
                    "s4d": ["d_state", "dt_min", "dt_max"], "transformer": ["n_heads", "pos"], "urlstm": [], "gru": [], "lstm": []}
    m = build_backbone("mingru", BackboneConfig(width=8, n_layers=1, options=MinGRUOptions(gate="ur"), dropout=0.0, max_tokens=59))
    assert m.options == MinGRUOptions(gate="ur") and m.blocks[0].mixer.gate.gate == "ur"
    assert build_backbone("mingru", BackboneConfig(width=8, n_layers=1, dropout=0.0, max_tokens=59)).options == MinGRUOptions()  # None: defaults
    with pytest.raises(TypeError, match="takes MinGRUOptions, got TransformerOptions"):
        build_backbone("mingru", BackboneConfig(width=8, options=TransformerOptions(), n_layers=1, dropout=0.0, max_tokens=59))

"""Scans against plain loops (long and saturated), the UR-paper gate tools, and S4D's kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrl.agents.backbones import BackboneConfig, build_backbone
from seqrl.agents.backbones.gates import ForgetGate, log_refine, refine, uniform_gate_bias
from seqrl.agents.backbones.s4d import S4DLayer
from seqrl.agents.backbones.scan import log_space_scan, sequential_scan, signed_log_space_scan
from seqrl.core.errors import SeqRLError

from helpers import backbone_options

f64 = torch.float64


def rand(*shape, seed=0, lo=0.0, hi=1.0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=f64) * (hi - lo) + lo


def test_signed_scan_matches_loop_for_inputs_of_both_signs():
    a, b, h0 = rand(2, 40, 3, 5, lo=0.05, hi=0.99), rand(2, 40, 3, 5, seed=1, lo=-1, hi=1), rand(2, 3, 5, seed=2, lo=-1, hi=1)
    torch.testing.assert_close(signed_log_space_scan(a.log(), b), sequential_scan(a, b), atol=1e-10, rtol=0)
    torch.testing.assert_close(signed_log_space_scan(a.log(), b, h0), sequential_scan(a, b, h0), atol=1e-10, rtol=0)


@pytest.mark.parametrize("regime", ["mixed", "saturated_near_1", "saturated_near_0"])
def test_log_space_scan_long_and_saturated(regime):
    t = 100_000
    if regime == "mixed":
        a = rand(1, t, 4, lo=0.01, hi=0.999)
    elif regime == "saturated_near_1":
        a = 1 - rand(1, t, 4, lo=1e-9, hi=1e-6)  # forget gates ~ 1: memory over the whole sequence
    else:
        a = rand(1, t, 4, lo=1e-12, hi=1e-8)  # forget gates ~ 0: h_t ~ b_t
    b = rand(1, t, 4, seed=1, lo=1e-3, hi=1.0)
    ref = sequential_scan(a, b)
    got = log_space_scan(a.log(), b.log()).exp()
    assert torch.isfinite(got).all()
    assert ((got - ref).abs() / ref.abs()).max().item() < 1e-6


def test_refine_gate_lies_in_its_band_and_log_form_agrees():
    f, r = torch.meshgrid(torch.linspace(0, 1, 101, dtype=f64), torch.linspace(0, 1, 101, dtype=f64), indexing="ij")
    g = refine(f, r)
    assert (g >= f**2 - 1e-12).all() and (g <= 1 - (1 - f) ** 2 + 1e-12).all()
    torch.testing.assert_close(refine(f, torch.zeros_like(r)), f**2)
    torch.testing.assert_close(refine(f, torch.ones_like(r)), 1 - (1 - f) ** 2)
    k_f, k_r = rand(1000, lo=-30, hi=30), rand(1000, seed=1, lo=-30, hi=30)
    log_g, log_1mg = log_refine(k_f, k_r)
    g = refine(torch.sigmoid(k_f), torch.sigmoid(k_r))
    torch.testing.assert_close(log_g.exp(), g)
    torch.testing.assert_close(log_1mg.exp(), 1 - g)
    assert torch.isfinite(log_g).all() and torch.isfinite(log_1mg).all()


def test_ugi_makes_initial_forget_activations_uniform():
    d = 4000
    torch.manual_seed(0)
    u = np.sort(torch.sigmoid(uniform_gate_bias(d)).numpy())
    ks = np.max(np.abs(u - (np.arange(1, d + 1) - 0.5) / d))  # Kolmogorov-Smirnov distance to U(0, 1)
    assert ks < 1.36 / np.sqrt(d) + 1 / d  # 95% critical value (+ the 1/D clipping)
    for name in ("mingru", "minlstm", "urlstm"):  # the layers' forget biases get it (urlstm always)
        cfg = BackboneConfig(width=512, n_layers=1, options=backbone_options(name, gate="ugi"), dropout=0.0, max_tokens=59)  # urlstm: none, always UGI
        bias = build_backbone(name, cfg).blocks[0].mixer.state_dict()
        b_f = next(v for k, v in bias.items() if k.endswith("bias") and ("in_proj" in k or "input" in k))[:512]
        acts = torch.sigmoid(b_f).numpy()
        assert 0.3 < acts.mean() < 0.7 and np.quantile(acts, 0.1) < 0.2 and np.quantile(acts, 0.9) > 0.8, name
    default = build_backbone("mingru", BackboneConfig(width=512, n_layers=1, dropout=0.0, max_tokens=59)).blocks[0].mixer.in_proj.bias[:512]
    default = torch.sigmoid(default.detach()).numpy()
    assert np.quantile(default, 0.9) - np.quantile(default, 0.1) < 0.2  # default init: all near 1/2


def test_ur_refine_bias_is_minus_forget_bias():
    bias = torch.zeros(3 * 32)
    ForgetGate("ur").init_(bias, 32)
    torch.testing.assert_close(bias[32:64], -bias[:32])
    assert (bias[64:] == 0).all()


def test_unknown_gate_is_refused():
    with pytest.raises(SeqRLError, match="Unknown gate 'uu'"):
        build_backbone("mingru", BackboneConfig(width=8, options=backbone_options("mingru", gate="uu"), n_layers=1, dropout=0.0, max_tokens=59))


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
@pytest.mark.parametrize("gate", ["ugi", "ur"])
@torch.no_grad()
def test_gate_options_keep_the_parity_contract(name, gate):
    torch.manual_seed(0)
    m = build_backbone(name, BackboneConfig(width=12, n_layers=2, dropout=0.0, options=backbone_options(name, gate=gate), max_tokens=59))
    m = m.double().eval()
    x = torch.randn(2, 15, 12, dtype=f64)
    y, _ = m(x)
    state, ys = m.initial_state(2), []
    for t in range(15):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
    assert (torch.stack(ys, 1) - y).abs().max() <= 1e-6
    y1, s = m(x[:, :4])
    y2, _ = m(x[:, 4:], s)
    assert (torch.cat([y1, y2], 1) - y).abs().max() <= 1e-6
    acts = m.gate_activations(x)
    assert {"layer0/forget", "layer1/forget"} <= set(acts)
    if gate == "ur":
        assert "layer0/effective" in acts


@torch.no_grad()
def test_s4d_kernel_equals_its_recurrence():
    torch.manual_seed(0)
    layer = S4DLayer(6, n_modes=8).double()
    t = 50
    k = layer.kernel(t)  # (H, T)
    dtA, dB, C = layer._ssm()
    s, rec = dB.clone(), []  # impulse response: s_0 = B^ * 1
    for _ in range(t):
        rec.append(2 * (C * s).sum(-1).real)
        s = dtA.exp() * s
    torch.testing.assert_close(k, torch.stack(rec, -1), atol=1e-12, rtol=0)


# ---- the native CPU scan (C loop) against the log-space reference ---------------------------------
native = pytest.importorskip("seqrl.agents.backbones.native_scan")
needs_native = pytest.mark.skipif(not native.available(), reason="no C compiler: the native scan is not built")


@needs_native
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-6), (torch.float32, 1e-4)])
@pytest.mark.parametrize("t", [60, 100_000])
def test_native_scan_equals_log_space_scan(dtype, tol, t):
    """Against the float64 log-space scan of the same inputs (with and without a carried state).

    In float32 at T = 100k the log-space scan itself drifts (cumsum(log a) reaches ~1e5, about
    3e-2 relative error measured); the sequential loop does not, so float32 is checked against
    the float64 reference rather than against the float32 log-space result."""
    from seqrl.agents.backbones.scan import scan_positive

    g = torch.Generator().manual_seed(0)
    b, d = (2, 8) if t > 1000 else (4, 16)
    k = torch.randn(b, t, d, generator=g, dtype=f64) * 3
    log_a = -torch.nn.functional.softplus(-k)  # log f, f in (0, 1)
    log_b = -torch.nn.functional.softplus(k) + torch.randn(b, t, d, generator=g, dtype=f64).clamp(-3, 3)
    h0 = torch.rand(b, d, generator=g, dtype=f64)
    for state in (None, h0):
        ref = scan_positive(log_a, log_b, state, backend="log")
        got = scan_positive(log_a.to(dtype), log_b.to(dtype), None if state is None else state.to(dtype), "native")
        assert torch.isfinite(got).all()
        assert ((got.double() - ref).abs() / ref.abs()).max().item() <= tol


@needs_native
def test_native_scans_have_correct_gradients():
    b, t, e, n = 2, 7, 3, 4
    g = torch.Generator().manual_seed(0)
    mk = lambda *s, lo=-1.0, hi=1.0: (torch.rand(*s, generator=g, dtype=f64) * (hi - lo) + lo).requires_grad_()
    assert torch.autograd.gradcheck(native.native_scan, (mk(b, t, e, lo=0, hi=1), mk(b, t, e), mk(b, e)))
    args = (mk(b, t, e), mk(b, t, e, lo=0.01, hi=1), mk(e, n, lo=-1, hi=-0.01), mk(b, t, n), mk(b, t, n), mk(b, e, n))
    assert torch.autograd.gradcheck(native.native_selective_scan, args)


@needs_native
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-6), (torch.float32, 1e-4)])
def test_native_selective_scan_equals_log_space_path(dtype, tol):
    from seqrl.agents.backbones.scan import selective_scan

    g = torch.Generator().manual_seed(0)
    b, t, e, n = 3, 50, 6, 5
    x, Bm, Cm = (torch.randn(*s, generator=g, dtype=dtype) for s in ((b, t, e), (b, t, n), (b, t, n)))
    dt = torch.rand(b, t, e, generator=g, dtype=dtype) * 0.5 + 1e-3
    A = -torch.arange(1, n + 1, dtype=dtype).repeat(e, 1)
    h0 = torch.randn(b, e, n, generator=g, dtype=dtype)
    for state in (None, h0):
        y_ref, s_ref = selective_scan(x, dt, A, Bm, Cm, state, backend="log")
        y, s = selective_scan(x, dt, A, Bm, Cm, state, backend="native")
        assert (y - y_ref).abs().max().item() <= tol * max(1.0, y_ref.abs().max().item())
        assert (s - s_ref).abs().max().item() <= tol * max(1.0, s_ref.abs().max().item())


@needs_native
def test_native_gated_scan_gradients_and_saturation():
    g = torch.Generator().manual_seed(0)
    q, v = (torch.randn(2, 9, 5, generator=g, dtype=f64).mul(3).requires_grad_() for _ in range(2))
    h0 = torch.randn(2, 5, generator=g, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(native.native_gated_scan, (q, v, h0))
    # against the plain recurrence, and finite with saturated gates / huge candidates
    big = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=f64).repeat(1, 3, 1)
    for qq, vv in ((q, v), (big, big.flip(-1)), (big.float(), big.float())):
        h = native.native_gated_scan(qq, vv, None)
        s = torch.sigmoid(qq.double())
        ref = sequential_scan(s, (1 - s) * torch.where(vv >= 0, vv + 0.5, torch.sigmoid(vv)).double())
        assert torch.isfinite(h).all()
        torch.testing.assert_close(h.double(), ref, rtol=1e-5, atol=1e-5)
    # gradients at saturation: finite and equal to autograd through torch's own sigmoid
    for dtype in (f64, torch.float32):
        qq, vv = big.to(dtype).clone().requires_grad_(), big.flip(-1).to(dtype).clone().requires_grad_()
        native.native_gated_scan(qq, vv, None).pow(2).sum().backward()
        q2, v2 = big.to(dtype).clone().requires_grad_(), big.flip(-1).to(dtype).clone().requires_grad_()
        s = torch.sigmoid(q2)
        sequential_scan(s, (1 - s) * torch.where(v2 >= 0, v2 + 0.5, torch.sigmoid(v2))).pow(2).sum().backward()
        for got, ref in ((qq.grad, q2.grad), (vv.grad, v2.grad)):
            assert torch.isfinite(got).all()
            torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


@needs_native
@pytest.mark.parametrize("backbone", ["mingru", "minlstm"])
@pytest.mark.parametrize("gate", ["default", "ugi", "ur"])
def test_fused_native_layer_equals_log_space_layer_with_gradients(backbone, gate):
    from seqrl.agents.backbones import BackboneConfig, build_backbone

    models = {}
    for scan in ("native", "log"):
        torch.manual_seed(0)
        cfg = BackboneConfig(width=8, n_layers=2, dropout=0.0, options=backbone_options(backbone, gate=gate, scan=scan), max_tokens=59)
        models[scan] = build_backbone(backbone, cfg).double()
    x = torch.randn(3, 40, 8, generator=torch.Generator().manual_seed(1), dtype=f64)
    state = models["log"].initial_state(3)
    state = [s + 0.3 for s in state]  # a non-zero carried state enters on both paths
    outs = {}
    for scan, m in models.items():
        y, s_out = m(x, state)
        (y.pow(2).sum() + sum(si.sum() for si in s_out)).backward()
        outs[scan] = (y, s_out, {n: p.grad for n, p in m.named_parameters()})
    torch.testing.assert_close(outs["native"][0], outs["log"][0], atol=1e-6, rtol=0)
    for a, b in zip(outs["native"][1], outs["log"][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    for n, gr in outs["log"][2].items():
        torch.testing.assert_close(outs["native"][2][n], gr, atol=1e-6, rtol=1e-6, msg=n)

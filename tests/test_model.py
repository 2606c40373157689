"""The Decision model, its loss, the two rollout modes and checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrl.core.errors import SeqRLError
from seqrl.agents import AgentBundle, DecisionModel, ModelConfig, SequencePolicy, load_checkpoint, save_checkpoint
from seqrl.agents.backbones import available_backbones
from seqrl.agents.model import masked_action_mse
from seqrl.datasets import DatasetInfo

from helpers import backbone_options
from seqrl.core.tasks import TASKS

K = 4


def tiny_model(backbone: str, **kw) -> DecisionModel:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, width=16, n_layers=2, dropout=0.0,
                      context_len=K, max_ep_len=50, options=backbone_options(backbone, n_heads=2), **kw)
    return cfg.create(5, 2).double()


def random_window(seed: int = 0, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """rtg (B, K, 1), states (B, K, 5), actions (B, K, 2) in float64, and timesteps 0..K-1 (B, K)."""
    g = torch.Generator().manual_seed(seed)
    r, s, a = (torch.randn(batch, K, n, generator=g, dtype=torch.float64) for n in (1, 5, 2))
    return r, s, a, torch.arange(K).repeat(batch, 1)


def test_masked_mse_by_hand():
    pred = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [9.0, 9.0]]])
    target = torch.zeros(1, 3, 2)
    mask = torch.tensor([[True, True, False]])
    # step 0: (1 + 1) / 2 = 1; step 1: (4 + 0) / 2 = 2; step 2 is padding
    assert masked_action_mse(pred, target, mask).item() == pytest.approx(1.5)


@pytest.mark.parametrize("tokens", ["interleaved", "fused"])
@pytest.mark.parametrize("backbone", available_backbones())
def test_action_depends_only_on_past_and_present(backbone, tokens):
    m = tiny_model(backbone, tokens=tokens).eval()
    r, s, a, ts = random_window(0)
    out = m(r, s, a, ts)
    assert out.shape == (2, K, 2) and out.abs().max() <= 1  # tanh head
    for x, changed in ((s, 1), (r, 1), (a, 2 if tokens == "interleaved" else K)):
        x2 = x.clone()
        x2[:, 1] += 1.0  # s_1, R^_1 may influence a_1.., a_1 a_2.. (fused: nothing, actions are no input)
        out2 = m(*[x2 if y is x else y for y in (r, s, a)], ts)
        assert torch.allclose(out[:, :changed], out2[:, :changed])
        assert changed == K or not torch.allclose(out[:, changed:], out2[:, changed:])


@pytest.mark.parametrize("tokens", ["interleaved", "fused"])
@pytest.mark.parametrize("backbone", available_backbones())
def test_recurrent_step_equals_the_training_forward(backbone, tokens):
    """Mamba's test: one env step at a time with the state carried gives the full forward's actions."""
    m = tiny_model(backbone, tokens=tokens).eval()
    r, s, a, ts = random_window(1)
    ts = ts + torch.tensor([[0], [7]])  # the second env starts mid-episode
    state, steps = m.initial_state(2), []
    for t in range(K):
        act, state = m.step(r[:, t, 0], s[:, t], a[:, t - 1] if t else torch.zeros_like(a[:, 0]), ts[:, t], state)
        steps.append(act)
    forward = m(r, s, a, ts)
    torch.testing.assert_close(torch.stack(steps, 1)[0], forward[0])
    if tokens == "fused":  # no a_{t-1} token, so mid-episode steps too run exactly the window's tokens
        torch.testing.assert_close(torch.stack(steps, 1)[1], forward[1])


def test_fused_tokens_have_no_action_input_and_a_k_token_span():
    m = tiny_model("transformer", tokens="fused")
    assert m.embed_action is None and not any(k.startswith("embed_action") for k in m.state_dict())
    assert m.cfg.backbone_config().max_tokens == K and tiny_model("transformer").cfg.backbone_config().max_tokens == 3 * K - 1
    with pytest.raises(Exception, match="tokens must be one of interleaved, fused"):
        tiny_model("mingru", tokens="pairs")


@pytest.mark.parametrize("backbone", ["transformer", "mingru"])
def test_without_time_embedding_the_model_sees_no_episode_time(backbone):
    r, s, a, ts = random_window(0)
    timed, untimed = tiny_model(backbone).eval(), tiny_model(backbone, time_embedding=False).eval()
    assert untimed.embed_timestep is None and "embed_timestep.weight" not in untimed.state_dict()
    assert torch.equal(untimed(r, s, a, ts), untimed(r, s, a, ts + 17))
    assert not torch.allclose(timed(r, s, a, ts), timed(r, s, a, ts + 17))  # the control: time does matter there
    # the recurrent step still equals the training forward (the first K steps of the window rollout, too)
    state, steps = untimed.initial_state(2), []
    for t in range(K):
        act, state = untimed.step(r[:, t, 0], s[:, t], a[:, t - 1] if t else torch.zeros_like(a[:, 0]),
                                  torch.full((2,), t), state)
        steps.append(act)
    torch.testing.assert_close(torch.stack(steps, 1), untimed(r, s, a, ts))


@pytest.mark.parametrize("tokens", ["interleaved", "fused"])
@pytest.mark.parametrize("backbone", available_backbones())
def test_window_and_recurrent_rollouts_agree_within_first_k_steps(backbone, tokens):
    m = tiny_model(backbone, tokens=tokens)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=5), rng.uniform(0.5, 2, size=5)
    acts = {}
    for mode in ("window", "recurrent"):
        pol = SequencePolicy(m, mean, std, rtg_scale=100.0, rollout=mode)
        pol.reset(np.array([300.0, 150.0]))
        obs_rng, out = np.random.default_rng(1), []
        for _ in range(K):
            out.append(pol.act(obs_rng.normal(size=(2, 5))))
            pol.observe(obs_rng.uniform(size=2))
        acts[mode] = np.stack(out)
    np.testing.assert_allclose(acts["window"], acts["recurrent"], atol=1e-6)


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path):
    m = tiny_model("mingru").float()
    info = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)
    bundle = AgentBundle(m, np.zeros(5), np.ones(5), 1000.0, [3600.0], info, step=7, config={"backbone": "mingru"})
    save_checkpoint(tmp_path / "last.pt", bundle)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
    loaded, _ = load_checkpoint(tmp_path / "last.pt")
    x = [torch.randn(1, K, n) for n in (1, 5, 2)] + [torch.arange(K)[None]]
    assert torch.equal(m.eval()(*x), loaded.model.eval()(*x))
    assert loaded.step == 7 and loaded.dataset == info and loaded.model.cfg == m.cfg


@pytest.mark.parametrize("backbone", ["transformer", "mingru"])
@pytest.mark.parametrize("rollout", ["window", "recurrent"])
def test_vectorized_evaluation_gives_the_one_env_returns(backbone, rollout):
    import gymnasium as gym

    from seqrl.envs import run_episodes, run_episodes_vectorized

    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, width=16, n_layers=1, dropout=0.0, context_len=K)
    m = cfg.create(11, 3).double()
    pol = SequencePolicy(m, np.zeros(11), np.ones(11), 1000.0, rollout)
    env_fn = lambda: gym.make("Hopper-v5", max_episode_steps=21)  # noqa: E731
    one = run_episodes(env_fn(), pol, 300.0, episodes=4, seed=5)
    vec = run_episodes_vectorized(env_fn, pol, 300.0, episodes=4, seed=5)
    assert len({round(e.ret, 6) for e in one}) > 1  # the episodes differ, so the seeds matter
    assert {e.fell for e in one} == {True, False}  # some fall, some reach the 21-step limit
    for field in ("ret", "x_displacement"):
        np.testing.assert_allclose([getattr(e, field) for e in vec], [getattr(e, field) for e in one], rtol=1e-9)
    assert [(e.length, e.fell, e.upside_down) for e in vec] == [(e.length, e.fell, e.upside_down) for e in one]
    assert all(e.length == 21 for e in one if not e.fell) and all(e.length <= 21 for e in one if e.fell)
    assert all(abs(e.x_displacement) > 0 for e in one)  # the hopper moved


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
def test_upside_down_reads_the_root_bodys_pitch(env_id):
    """A planar body pitched by a about y is upside down iff cos(a) < 0, however many turns it made."""
    import gymnasium as gym

    from seqrl.envs.episodes import upside_down

    env = gym.make(env_id)
    env.reset(seed=0)
    base = env.unwrapped
    for pitch, flipped in [(0.0, False), (1.4, False), (-1.4, False), (1.7, True), (math.pi, True), (-3.3, True),
                           (2 * math.pi + 0.3, False), (3 * math.pi, True)]:
        qpos = base.data.qpos.copy()
        qpos[2] = pitch  # rooty: the root's rotation about y (qpos = rootx, rootz, rooty, joints...)
        base.set_state(qpos, base.data.qvel.copy())  # runs mj_forward: the body frames follow qpos
        assert upside_down(env) is flipped, pitch
    env.close()
    cartpole = gym.make("CartPole-v1")  # no MuJoCo data: never upside down
    cartpole.reset(seed=0)
    assert upside_down(cartpole) is False


@pytest.mark.parametrize("tokens", ["interleaved", "fused"])
@pytest.mark.parametrize("backbone", available_backbones())
def test_window_policy_sees_exactly_the_training_windows(backbone, tokens):
    """Teacher-forced along a logged episode, the window policy's action at step t equals the model's
    training-time prediction for the sampler's window ending at t (same tokens, same timesteps)."""
    from seqrl.datasets import TrajectoryDataset, WindowSampler

    m = tiny_model(backbone, tokens=tokens).eval()
    rng = np.random.default_rng(0)
    n = 3 * K + 2
    info = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)
    ds = TrajectoryDataset.from_episodes([(rng.normal(size=(n, 5)), rng.uniform(-1, 1, (n, 2)), rng.uniform(size=n), True)], info)
    mean, std = ds.state_stats()
    sampler = WindowSampler(ds, K, mean, std, 100.0, 50)
    modes = ["window", "recurrent"] if backbone == "transformer" else ["window"]  # transformer: same thing
    for mode in modes:
        pol = SequencePolicy(m, mean, std, 100.0, mode)
        pol.reset(np.array([ds.returns_to_go()[0]]))
        for t in range(n):
            act = pol.act(ds.observations[t][None])[0]
            first = max(0, t - K + 1)
            b = sampler.gather(*sampler.windows(np.array([first])))
            with torch.no_grad():
                pred = m(b.rtg.double(), b.states.double(), b.actions.double(), b.timesteps)[0, t - first].numpy()
            np.testing.assert_allclose(act, pred, atol=1e-6, err_msg=f"{mode} t={t}")
            pol.observe(np.array([ds.rewards[t]]), actions=ds.actions[t][None])  # teacher forcing


def test_a_checkpoint_of_another_format_is_refused_and_left_as_it_was(tmp_path):
    """A checkpoint written by another version of seqrl (another format) is refused with a message naming the
    formats and what to do; the file is not touched."""
    m = ModelConfig(width=8, n_layers=1, dropout=0.0, context_len=K).create(5, 2)
    info = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)
    save_checkpoint(tmp_path / "new.pt", AgentBundle(m, np.zeros(5), np.ones(5), 1.0, [1.0], info, 0, {}))
    payload = torch.load(tmp_path / "new.pt", weights_only=False)
    payload["format"] = 3
    torch.save(payload, tmp_path / "old.pt")
    before = (tmp_path / "old.pt").read_bytes()
    with pytest.raises(SeqRLError, match="checkpoint of format 3, written by another version of seqrl; this one "
                                         "reads format 4. Evaluate or export it with the version that wrote it"):
        load_checkpoint(tmp_path / "old.pt")
    assert (tmp_path / "old.pt").read_bytes() == before


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cpu_dropout_keeps_1_minus_p_scaled_and_routes_gradients(p):
    from seqrl.agents.backbones.stack import Dropout

    torch.manual_seed(0)
    drop = Dropout(p)
    x = torch.ones(400, 500, dtype=torch.float64, requires_grad=True)
    y = drop(x)
    kept = y != 0
    n, frac = kept.numel(), kept.double().mean().item()
    assert abs(frac - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5  # binomial, 5 sigma
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    y.sum().backward()
    assert torch.equal(x.grad, kept.double() / (1 - p))
    drop.eval()
    assert drop(x) is x
    assert Dropout(0.0)(x) is x
    with pytest.raises(ValueError):
        Dropout(1.0)

"""Exported policies (export.py, agents/deploy.py, seqrl/runner.py): the same actions as the PyTorch policy,
a runner that needs no PyTorch, clear errors for files that are not policies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrl.agents import AgentBundle, DecisionModel, ModelConfig, SequencePolicy, save_checkpoint
from seqrl.agents.backbones import available_backbones
from seqrl.agents.deploy import export_policy
from seqrl.datasets import DatasetInfo
from seqrl.core.errors import SeqRLError
from seqrl.runner import load_policy

from helpers import REPO, backbone_options
from seqrl.core.tasks import TASKS

EPISODE = 1000  # steps: a full MuJoCo locomotion episode
N_ENVS = 3  # traced with 2: the env dim must really be dynamic
TOL = 1e-5  # max abs action difference, float32
FORMATS = ("onnx", "torchscript")
INFO = DatasetInfo("test/hopper/medium-v0", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: tiny ops, and under a loaded machine OpenMP's spinning threads make nn.GRU's
    eager steps ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_bundle(backbone: str, obs_dim: int = 5, act_dim: int = 2, tokens: str = "interleaved",
                pos: str = "none") -> AgentBundle:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, width=16, n_layers=2, dropout=0.1,
                      context_len=4, max_ep_len=1000, options=backbone_options(backbone, n_heads=2, pos=pos),
                      tokens=tokens)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=obs_dim), rng.uniform(0.5, 2, size=obs_dim)
    return AgentBundle(cfg.create(obs_dim, act_dim), mean, std, 100.0, [300.0, 150.0], INFO, step=7, config={})


def cases() -> list[tuple[str, str]]:
    """Every backbone in its default export mode (recurrent; the transformer: window), and minGRU's window."""
    return [(b, "window" if b == "transformer" else "recurrent") for b in available_backbones()] + [("mingru", "window")]


def drive(policy, seed: int = 1) -> np.ndarray:
    """A full episode for N_ENVS envs on synthetic observations and rewards -> actions (T, N, act_dim)."""
    rng = np.random.default_rng(seed)
    policy.reset(np.array([300.0, 150.0, 40.0]))
    out = []
    for _ in range(EPISODE):
        out.append(policy.act(rng.normal(size=(N_ENVS, 5)).astype(np.float32)))
        policy.observe(rng.uniform(0, 2, size=N_ENVS))
    return np.stack(out)


@lru_cache(maxsize=None)
def reference(backbone: str, rollout: str, tokens: str = "interleaved", pos: str = "none") -> np.ndarray:
    b = tiny_bundle(backbone, tokens=tokens, pos=pos)
    return drive(SequencePolicy(b.model, b.obs_mean, b.obs_std, b.rtg_scale, rollout))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("backbone, rollout", cases())
def test_exported_actions_equal_the_pytorch_policy_over_an_episode(tmp_path, backbone, rollout, fmt):
    path = tmp_path / f"policy.{fmt}"
    export_policy(tiny_bundle(backbone), path, fmt, rollout)
    got = drive(load_policy(path))
    want = reference(backbone, rollout)
    assert got.shape == want.shape == (EPISODE, N_ENVS, 2)
    assert np.abs(got - want).max() <= TOL
    assert np.abs(want[-1] - want[0]).max() > 1e-3  # the actions do change along the episode


@pytest.mark.parametrize("backbone, rollout", [("mingru", "recurrent"), ("mingru", "window"), ("transformer", "window")])
def test_fused_tokens_export_the_same_actions(tmp_path, backbone, rollout):
    export_policy(tiny_bundle(backbone, tokens="fused"), tmp_path / "policy.onnx", "onnx", rollout)
    got = drive(load_policy(tmp_path / "policy.onnx"))
    want = reference(backbone, rollout, "fused")
    assert np.abs(got - want).max() <= TOL and np.abs(want[-1] - want[0]).max() > 1e-3
    assert np.abs(want - reference(backbone, rollout)).max() > 1e-3  # another model than the interleaved one


def test_a_rope_transformer_exports_the_same_actions(tmp_path):
    export_policy(tiny_bundle("transformer", pos="rope"), tmp_path / "policy.onnx", "onnx", "window")
    got = drive(load_policy(tmp_path / "policy.onnx"))
    want = reference("transformer", "window", pos="rope")
    assert np.abs(got - want).max() <= TOL and np.abs(want[-1] - want[0]).max() > 1e-3
    assert np.abs(want - reference("transformer", "window")).max() > 1e-3  # another model than without positions


def test_metadata_travels_with_the_file(tmp_path):
    b = tiny_bundle("mingru")
    export_policy(b, tmp_path / "p.onnx", "onnx", checkpoint="runs/x/last.pt")
    info = load_policy(tmp_path / "p.onnx").info
    assert (info.env_id, info.obs_dim, info.act_dim, info.backbone, info.rollout) == ("Hopper-v5", 5, 2, "mingru", "recurrent")
    assert (info.ref_min_score, info.ref_max_score) == TASKS["hopper"].ref_scores
    assert info.default_targets == [300.0, 150.0] and info.rtg_scale == 100.0 and info.step == 7
    assert info.checkpoint == "runs/x/last.pt" and info.dataset == INFO.to_dict() and info.seqrl_version
    assert [s["name"] for s in info.state] == ["layer0", "layer1"]  # one minGRU state per layer, named
    import onnx

    graph = onnx.load(tmp_path / "p.onnx").graph
    assert [i.name for i in graph.input] == ["obs", "rtg", "prev_action", "timestep", "state.layer0", "state.layer1"]
    assert [o.name for o in graph.output] == ["action", "next_state.layer0", "next_state.layer1"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # the env dim is symbolic
    assert not any(n.domain not in ("", "ai.onnx", "com.microsoft") for n in graph.node)  # standard ops only


def test_the_transformer_has_no_recurrent_export(tmp_path):
    with pytest.raises(SeqRLError, match="no O\\(1\\) recurrent step.*--rollout window"):
        export_policy(tiny_bundle("transformer"), tmp_path / "p.onnx", "onnx", "recurrent")


def test_exported_policy_plays_a_real_hopper_episode_like_the_pytorch_one(tmp_path):
    import gymnasium as gym

    from seqrl.envs import run_episodes

    b = tiny_bundle("mingru", obs_dim=11, act_dim=3)
    export_policy(b, tmp_path / "p.onnx", "onnx")
    env = gym.make("Hopper-v5")
    torch_pol = SequencePolicy(b.model, b.obs_mean, b.obs_std, b.rtg_scale, "recurrent")
    want = run_episodes(env, torch_pol, 300.0, episodes=2, seed=3)
    got = run_episodes(env, load_policy(tmp_path / "p.onnx"), 300.0, episodes=2, seed=3)
    np.testing.assert_allclose([e.ret for e in got], [e.ret for e in want], atol=1e-3)
    assert [e.length for e in got] == [e.length for e in want]


BLOCK_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None

sys.meta_path.insert(0, _NoTorch())
"""

RUN_WITHOUT_TORCH = """
import json, sys
import numpy as np
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch imported despite the blocker")
from seqrl.runner import load_policy

policy = load_policy(sys.argv[1])
policy.reset(np.array([300.0, 150.0]))
rng = np.random.default_rng(0)
actions = []
for _ in range(50):
    actions.append(policy.act(rng.normal(size=(2, 5)).astype(np.float32)).tolist())
    policy.observe(np.ones(2))
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
print(json.dumps(actions))
"""


def test_runner_needs_no_torch(tmp_path):
    b = tiny_bundle("mingru")
    export_policy(b, tmp_path / "p.onnx", "onnx")
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCK_TORCH)
    (tmp_path / "run.py").write_text(RUN_WITHOUT_TORCH)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "blocker")}
    p = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "p.onnx")], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    got = np.array(json.loads(p.stdout))
    policy = SequencePolicy(b.model, b.obs_mean, b.obs_std, b.rtg_scale, "recurrent")
    policy.reset(np.array([300.0, 150.0]))
    rng, want = np.random.default_rng(0), []
    for _ in range(50):
        want.append(policy.act(rng.normal(size=(2, 5)).astype(np.float32)))
        policy.observe(np.ones(2))
    assert np.abs(got - np.stack(want)).max() <= TOL
    # and the blocker does block: the same interpreter cannot import torch
    p = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and "torch is blocked" in p.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Files that are not seqrl policies, and a good one."""
    import onnx
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("files")
    good = d / "good.onnx"
    export_policy(tiny_bundle("mingru"), good, "onnx")
    blob = good.read_bytes()
    (d / "truncated.onnx").write_bytes(blob[: len(blob) // 2])
    (d / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "empty.onnx").write_bytes(b"")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    foreign = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    onnx.save(foreign, d / "foreign.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 marks torch.jit deprecated
        torch.jit.save(torch.jit.script(torch.nn.ReLU()), str(d / "foreign_script.pt"))
    save_checkpoint(d / "last.pt", tiny_bundle("mingru"))
    return {p.stem: p for p in d.iterdir()}


@pytest.mark.parametrize("name, why", [
    ("truncated", "ONNX Runtime cannot read it"),
    ("noise", "ONNX Runtime cannot read it"),
    ("empty", "ONNX Runtime cannot read it"),
    ("foreign", "without seqrl metadata"),
    ("foreign_script", "without seqrl metadata"),
    ("last", "a PyTorch checkpoint"),
])
def test_a_file_that_is_not_a_policy_gets_a_clear_error(files, name, why):
    with pytest.raises(SeqRLError, match=f"is not a seqrl policy file \\(.*{why}.*export.py"):
        load_policy(files[name])


def test_evaluate_cli_reports_a_bad_policy_file_without_a_traceback(files, tmp_path, capsys):
    from test_cli import script

    evaluate = script("evaluate")
    for bad in (files["noise"], tmp_path / "missing.onnx"):
        assert evaluate.main(["--policy", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
    assert evaluate.main([str(tmp_path), "--policy", str(files["good"])]) == 2  # a run and a policy: which one?
    assert "one of them" in capsys.readouterr().err


def test_export_then_evaluate_policy_gives_the_run_directory_returns(tmp_path):
    """export.py on a run directory, then evaluate.py --policy: the table and JSON of evaluate.py RUN_DIR,
    the same returns on the same seeds (the issue's done-when check, on a tiny untrained model)."""
    from test_cli import script

    b = tiny_bundle("mingru", obs_dim=11, act_dim=3)
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir / "last.pt", b)
    export, evaluate = script("export"), script("evaluate")
    assert export.main([str(run_dir), "--out", str(tmp_path / "p.onnx")]) == 0
    common = ["--episodes", "2", "--targets", "300"]
    assert evaluate.main(["--policy", str(tmp_path / "p.onnx"), *common, "--json", str(tmp_path / "a.json")]) == 0
    assert evaluate.main([str(run_dir), *common, "--rollout", "recurrent", "--device", "cpu",
                          "--json", str(tmp_path / "b.json")]) == 0
    a, b_ = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert {k: a[k] for k in ("env", "dataset", "backbone", "step")} == {k: b_[k] for k in ("env", "dataset", "backbone", "step")}
    assert a["checkpoint"] == b_["checkpoint"] == str(run_dir / "last.pt")
    ra, rb = a["results"][0], b_["results"][0]
    assert ra["rollout"] == rb["rollout"] == "recurrent" and len(ra["returns"]) == 2
    np.testing.assert_allclose(ra["returns"], rb["returns"], atol=1e-3)
    # a rollout the file was not exported with is refused, clearly
    assert evaluate.main(["--policy", str(tmp_path / "p.onnx"), "--rollout", "window"]) == 2


def test_a_run_with_an_eval_env_exports_and_evaluates_in_it(tmp_path, monkeypatch):
    """--eval-env: the file says it acts in the eval env, keeps the dataset's info as it was, and evaluate.py
    --policy makes only the eval env."""
    import dataclasses

    from helpers import record_env_ids
    from test_cli import script

    b = dataclasses.replace(tiny_bundle("mingru", obs_dim=11, act_dim=3), eval_env="Hopper-v4")
    save_checkpoint(tmp_path / "run" / "last.pt", b)
    assert script("export").main([str(tmp_path / "run"), "--out", str(tmp_path / "p.onnx")]) == 0
    info = load_policy(tmp_path / "p.onnx").info
    assert info.env_id == "Hopper-v4" and info.dataset == INFO.to_dict()
    made = record_env_ids(monkeypatch)
    assert script("evaluate").main(["--policy", str(tmp_path / "p.onnx"), "--episodes", "1", "--targets", "300",
                                    "--json", str(tmp_path / "a.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["env"] == "Hopper-v4"
    assert made and set(made) == {"Hopper-v4"}


def test_export_cli_errors(tmp_path, capsys):
    from test_cli import script

    export = script("export")
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir / "last.pt", tiny_bundle("transformer"))
    assert export.main([str(run_dir), "--out", str(tmp_path / "p.onnx"), "--rollout", "recurrent"]) == 2
    assert "--rollout window" in capsys.readouterr().err
    assert export.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.onnx")]) == 2
    assert "neither a run directory nor a checkpoint" in capsys.readouterr().err
    assert export.main([str(run_dir), "--out", str(tmp_path / "p.pt"), "--format", "torchscript"]) == 0
    assert "window rollout" in capsys.readouterr().out
    assert load_policy(tmp_path / "p.pt").info.rollout == "window"


@pytest.mark.parametrize("backbone", ["mingru", "mamba"])
def test_envs_at_different_timesteps_in_one_call(tmp_path, backbone):
    """The step takes a timestep per env: env 0 starting (t = 0) beside env 1 at t = 3 gives each the actions
    it gets alone (the a_{t-1} token is skipped per env), in the exported graph as in the eager step."""
    import onnxruntime as ort

    from seqrl.agents.deploy import policy_step

    b = tiny_bundle(backbone)
    step = policy_step(b, "recurrent")
    export_policy(b, tmp_path / "p.onnx", "onnx")
    sess = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, 2, 5)).astype(np.float32)
    prev = rng.uniform(-1, 1, size=(5, 2, 2)).astype(np.float32)
    rtg = np.float32([300.0, 150.0])

    def alone(env: int, steps: int) -> tuple[np.ndarray, list[torch.Tensor]]:
        state = step.initial_state(1)
        with torch.no_grad():
            for t in range(steps):
                a, *state = step(torch.from_numpy(obs[t, env : env + 1]), torch.from_numpy(rtg[env : env + 1]),
                                 torch.from_numpy(prev[t, env : env + 1]), torch.tensor([t]), *state)
        return a.numpy(), state

    _, state1 = alone(1, 3)  # env 1 has taken 3 steps
    fresh = step.initial_state(1)
    state = [torch.cat([f, s], dim=spec.batch_dim) for f, s, spec in zip(fresh, state1, step.state_specs)]
    inputs = (torch.from_numpy(np.stack([obs[0, 0], obs[3, 1]])), torch.from_numpy(rtg),
              torch.from_numpy(np.stack([prev[0, 0], prev[3, 1]])), torch.tensor([0, 3]), *state)
    with torch.no_grad():
        eager = step(*inputs)[0].numpy()
    graph = sess.run(["action"], dict(zip(names, (t.numpy() for t in inputs))))[0]
    want = np.concatenate([alone(0, 1)[0], alone(1, 4)[0]])
    assert np.abs(eager - want).max() <= TOL and np.abs(graph - want).max() <= TOL

"""End-to-end: train_offline.py then evaluate.py on a tiny generated dataset, and clear errors for bad input."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import REPO, random_hopper_arrays, record_env_ids

TINY = ["--steps", "6", "--eval-every", "3", "--eval-episodes", "1", "--context-len", "5", "--width", "16",
        "--n-layers", "1", "--batch-size", "8", "--log-every", "2", "--warmup-steps", "2", "--device", "cpu"]


PROGRAMS = {"train_offline": "seqrl.cli.train", "evaluate": "seqrl.cli.evaluate", "export": "seqrl.cli.export"}


def script(name: str):
    """The program behind the repository's ``<name>.py`` (which only calls its ``main``)."""
    return importlib.import_module(PROGRAMS[name])


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.parametrize("backbone", ["transformer", "mingru"])
def test_train_then_evaluate(data_root, tmp_path, backbone):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", backbone,
             "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    assert "local Minari test/hopper/medium-v0" in p.stdout  # says what it resolved and from where
    assert {"config.yaml", "last.pt", "best.pt", "evals.jsonl"} <= {f.name for f in run_dir.iterdir()}
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["model"]["backbone"] == backbone and cfg["steps"] == 6 and cfg["model"]["width"] == 16
    evals = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [3, 6]
    r = evals[-1]["results"][0]  # what each episode did: length, forward progress, fell, upside down
    assert len(r["lengths"]) == len(r["x_displacement"]) == len(r["fell"]) == len(r["upside_down"]) == 1
    assert r["length_mean"] == r["lengths"][0] and r["upside_down_fraction"] == float(r["upside_down"][0])
    assert r["fell_fraction"] == float(r["fell"][0]) and (r["lengths"][0] < 1000 or not r["fell"][0])
    a, b = (x["normalized_mean"] for x in evals[-1]["results"])  # the closing line gives each target's score
    assert f"last evaluation (step 6): {a:.1f} at R=3600, {b:.1f} at R=1800 (mean {(a + b) / 2:.1f}) normalized;" in p.stdout

    acc = EventAccumulator(str(run_dir)).Reload()
    tags = set(acc.Tags()["scalars"])
    # done.json keeps the model's size, its training speed and the machine, which a committed record (no weights,
    # no TensorBoard files) could not otherwise tell
    done = json.loads((run_dir / "done.json").read_text())
    import torch
    params = sum(v.numel() for v in torch.load(run_dir / "last.pt", weights_only=False)["model"].values())
    assert done["params"] == params and f"{params:,} parameters" in p.stdout
    ups = [e.value for e in acc.Scalars("charts/updates_per_s")]
    assert len(ups) == 3 and done["updates_per_s"] == pytest.approx(float(np.median(ups)))  # log points 2, 4, 6
    assert done["machine"]["threads"] >= 1 and done["machine"]["torch"] == torch.__version__
    import mujoco
    assert done["machine"]["mujoco"] == mujoco.__version__ and f"mujoco {mujoco.__version__}," in p.stdout
    assert f"[seqrl] machine: {done['machine']['cpu']} (" in p.stdout and "isa" in done["machine"]
    assert {"losses/action_mse", "charts/learning_rate", "charts/updates_per_s",
            "eval/normalized_score_window_3600", "eval/normalized_score_window_1800",
            "eval/episode_length_window_3600", "eval/x_displacement_window_3600", "eval/fell_fraction_window_1800",
            "eval/upside_down_fraction_window_3600"} <= tags
    assert "hyperparameters/text_summary" in acc.Tags()["tensors"]
    if backbone == "mingru":  # gated backbones: forget-gate histograms at each evaluation
        assert "gates/layer0/forget" in acc.Tags()["histograms"]

    out = tmp_path / "eval.json"
    p = run(["evaluate.py", str(run_dir), "--episodes", "2", "--targets", "500", "--json", str(out), "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    assert "| 500 | window | 2 |" in p.stdout and "| length: mean (range) | x displacement m: mean (range) | fell | upside down |" in p.stdout
    res = json.loads(out.read_text())
    assert res["env"] == "Hopper-v5" and res["dataset"] == "test/hopper/medium-v0" and res["backbone"] == backbone
    (r,) = res["results"]
    assert r["target"] == 500 and r["rollout"] == "window" and len(r["returns"]) == len(r["normalized"]) == 2
    assert len(r["lengths"]) == len(r["fell"]) == len(r["x_displacement"]) == len(r["upside_down"]) == 2
    lo, hi = -20.272305, 3234.3
    np.testing.assert_allclose(r["normalized"], 100 * (np.array(r["returns"]) - lo) / (hi - lo))
    assert r["normalized_mean"] == pytest.approx(np.mean(r["normalized"]))
    assert r["normalized_std"] == pytest.approx(np.std(r["normalized"]))


def test_fused_tokens_train_checkpoint_and_evaluate_in_both_rollouts(data_root, tmp_path):
    run_dir = tmp_path / "run"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--tokens", "fused",
             "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    assert "train mingru+fused" in p.stderr and yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["tokens"] == "fused"
    import torch
    model = torch.load(run_dir / "last.pt", weights_only=False)["model"]
    assert not any(k.startswith("embed_action") for k in model)  # the checkpoint rebuilds the fused model
    out = tmp_path / "eval.json"
    p = run(["evaluate.py", str(run_dir), "--episodes", "2", "--targets", "500", "--rollout", "window", "recurrent",
             "--json", str(out), "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    window, recurrent = json.loads(out.read_text())["results"]
    assert window["rollout"] == "window" and recurrent["rollout"] == "recurrent"
    assert len(window["returns"]) == len(recurrent["returns"]) == 2


def test_bc_trains_evaluates_and_refuses_what_it_would_ignore(data_root, tmp_path, capsys):
    run_dir = tmp_path / "bc"
    bc_tiny = ["--steps", "6", "--eval-every", "3", "--eval-episodes", "1", "--batch-size", "8", "--log-every", "2",
               "--warmup-steps", "2", "--device", "cpu"]
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--agent", "bc", "--bc.hidden", "32", "32",
             "--run-dir", str(run_dir), *bc_tiny])
    assert p.returncode == 0, p.stderr
    assert "agent bc: 1,539 parameters" in p.stdout  # 11*32+32 + 32*32+32 + 32*3+3
    assert "| - | state | 1 |" in p.stdout
    (res,) = json.loads((run_dir / "evals.jsonl").read_text().splitlines()[-1])["results"]
    assert res["target"] is None and res["rollout"] == "state"
    done = json.loads((run_dir / "done.json").read_text())
    assert done["agent"] == "bc" and done["targets"] == [] and done["data"]["episodes"] == 6
    assert [d.name for d in tmp_path.iterdir()] == ["bc"]
    p = run(["evaluate.py", str(run_dir), "--episodes", "2", "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    assert "agent bc" in p.stdout and "| - | state | 2 |" in p.stdout
    err = error_of(capsys, "evaluate", [str(run_dir), "--targets", "500"])
    assert "a run of the behaviour-cloning agent (--agent bc)" in err and "Drop --targets / --rollout" in err
    err = error_of(capsys, "train_offline", ["--env", "hopper", "--dataset", "medium", "--agent", "bc", "--backbone",
                                             "mingru", "--context-len", "5"])
    assert "--agent bc does not use --backbone, --context-len" in err


def error_of(capsys, mod: str, argv: list[str]) -> str:
    assert script(mod).main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_unknown_backbone_lists_known_ones(data_root, capsys):
    err = error_of(capsys, "train_offline", ["--backbone", "lstmm", "--dataset", "medium"])
    assert "Unknown backbone 'lstmm'" in err and "transformer" in err and "mingru" in err


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("env: hopper\nwidht: 64\n")
    err = error_of(capsys, "train_offline", ["--config", str(cfg)])
    assert "unknown config key(s) 'widht' (did you mean model: {width: ...}?)" in err
    cfg.write_text("env: hopper\nmodel:\n  widht: 64\n")
    err = error_of(capsys, "train_offline", ["--config", str(cfg)])
    assert "model: unknown config key(s) 'widht' (did you mean 'width'?)" in err


def test_unknown_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        script("train_offline").main(["--widht", "64"])
    assert e.value.code == 2


def test_missing_dataset_file(tmp_path, capsys):
    err = error_of(capsys, "train_offline", ["--env", "hopper", "--dataset", str(tmp_path / "nope.hdf5")])
    assert "does not exist" in err


def test_dataset_that_does_not_match_the_env(tmp_path, capsys):
    from seqrl.datasets import write_d4rl_file

    arrays = random_hopper_arrays(2, max_steps=10)
    arrays["observations"] = np.concatenate([arrays["observations"]] * 2, axis=1)  # 22 dims, Hopper has 11
    path = tmp_path / "hopper-odd-v2.hdf5"
    write_d4rl_file(path, **arrays)
    err = error_of(capsys, "train_offline", ["--dataset", str(path), "--env", "hopper", "--context-len", "5"])
    assert "observations of size 22" in err and "has 11 and 3" in err


def test_evaluate_bad_run_dir(tmp_path, capsys):
    err = error_of(capsys, "evaluate", [str(tmp_path)])
    assert "No last.pt in" in err


def test_help_explains_every_field():
    from dataclasses import fields

    from seqrl.training.config import TrainConfig

    from seqrl.agents.backbones import available_backbones, get_backbone_class, options_class

    p = run(["train_offline.py", "--help"])
    assert p.returncode == 0
    from seqrl.agents import ModelConfig
    from seqrl.agents.bc import BCConfig
    from seqrl.core.errors import flag

    for f in fields(TrainConfig):
        if f.name not in ("model", "bc"):  # groups: their fields are the flags
            assert flag(f.name) in p.stdout, f.name
    for f in fields(ModelConfig):
        if f.name != "options":  # no flag of its own: each backbone's options are its group of flags
            assert flag(f.name) in p.stdout, f.name
    for f in fields(BCConfig):
        assert flag(f"bc.{f.name}") in p.stdout, f.name
    built_in = [b for b in available_backbones() if get_backbone_class(b).__module__.startswith("seqrl.")]
    for b in built_in:  # --mingru.gate, --s4d.d-state, --transformer.n-heads, ...
        for f in fields(options_class(b)):
            assert f"--{b}.{f.name.replace('_', '-')}" in p.stdout, (b, f.name)


def test_eval_env_override_and_unknown_env_id(d4rl_file, tmp_path, capsys, monkeypatch):
    err = error_of(capsys, "train_offline", ["--dataset", str(d4rl_file), "--eval-env", "Hopper-v99", "--context-len", "5"])
    assert "Cannot create the evaluation env 'Hopper-v99'" in err
    p = run(["train_offline.py", "--dataset", str(d4rl_file), "--eval-env", "Hopper-v4", "--run-dir", str(tmp_path / "r"),
             *TINY, "--steps", "2", "--eval-every", "2"])
    assert p.returncode == 0, p.stderr
    assert "evaluating in Hopper-v4" in p.stdout
    res = json.loads((tmp_path / "r" / "evals.jsonl").read_text().splitlines()[-1])
    assert len(res["results"]) == 2

    # the checkpoint keeps the dataset's own env, and the run's eval env beside it
    from seqrl.agents.checkpoint import load_checkpoint

    agent, payload = load_checkpoint(tmp_path / "r" / "last.pt")
    assert (agent.dataset.env_id, agent.eval_env, agent.env_id) == ("Hopper-v5", "Hopper-v4", "Hopper-v4")
    assert payload["dataset"]["env_id"] == "Hopper-v5" and payload["eval_env"] == "Hopper-v4"
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["eval_env"] == "Hopper-v4"
    # evaluate.py of the run evaluates in the run's eval env: every env it makes is Hopper-v4
    made = record_env_ids(monkeypatch)
    assert script("evaluate").main([str(tmp_path / "r"), "--episodes", "2", "--targets", "500", "--device", "cpu",
                                    "--json", str(tmp_path / "e.json")]) == 0
    assert "env Hopper-v4" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["env"] == "Hopper-v4"
    assert made and set(made) == {"Hopper-v4"}


def test_evaluate_chooses_the_gl_platform_only_for_video(tmp_path, capsys, monkeypatch):
    """MUJOCO_GL=egl is set by evaluate.py --video (before any env is made), never on import or without
    --video, and a user's own choice stays."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    evaluate = script("evaluate")
    assert "MUJOCO_GL" not in os.environ
    assert evaluate.main([str(tmp_path)]) == 2 and "MUJOCO_GL" not in os.environ
    assert evaluate.main([str(tmp_path), "--video", str(tmp_path / "v")]) == 2 and os.environ["MUJOCO_GL"] == "egl"
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert evaluate.main([str(tmp_path), "--video", str(tmp_path / "v")]) == 2 and os.environ["MUJOCO_GL"] == "osmesa"
    assert "No last.pt in" in capsys.readouterr().err


def test_context_longer_than_every_episode(tmp_path, capsys):
    from seqrl.datasets import write_d4rl_file

    path = tmp_path / "hopper-short-v2.hdf5"
    write_d4rl_file(path, **random_hopper_arrays(3, max_steps=8))
    err = error_of(capsys, "train_offline", ["--dataset", str(path), "--env", "hopper", "--context-len", "20"])
    assert "--context-len 20 is longer than every episode" in err and "Use --context-len 8 or less" in err


def test_dataset_without_reference_scores(tmp_path, capsys, monkeypatch):
    """A Minari dataset created without ref_min_score/ref_max_score cannot be normalized: refused before training."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = gym.make("Hopper-v5")
    obs, _ = env.reset(seed=0)
    o, a, r = [obs], [], []
    for _ in range(30):
        a.append(env.action_space.sample())
        obs, rew, *_ = env.step(a[-1])
        o.append(obs), r.append(rew)
    buf = EpisodeBuffer(id=0, observations=np.array(o), actions=np.array(a), rewards=r,
                        terminations=[False] * 30, truncations=[False] * 29 + [True])
    minari.create_dataset_from_buffers("noref/hopper/medium-v0", [buf], env=env, algorithm_name="random",
                                       author="t", author_email="t@t.invalid", code_permalink="tests")
    err = error_of(capsys, "train_offline", ["--dataset", "noref/hopper/medium-v0", "--context-len", "5"])
    assert "has no reference scores" in err


def test_torchrun_two_gloo_ranks_stay_in_sync(data_root, tmp_path):
    run_dir = tmp_path / "ddp"
    p = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train_offline.py",
             "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--run-dir", str(run_dir), *TINY,
             "--threads", "1"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 ranks: parameters identical after 6 updates" in p.stdout
    assert p.stdout.count("[seqrl] dataset:") == 1  # rank 0 alone speaks
    assert {"last.pt", "done.json"} <= {f.name for f in run_dir.iterdir()}


def test_val_fraction_logs_held_out_and_training_losses(data_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "val"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--val-fraction",
             "0.3", "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    evals = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert [sorted(e["losses"]) for e in evals] == [["train_probe", "val"]] * 2
    assert "val action MSE" in p.stdout + p.stderr and "held out of training" in p.stdout + p.stderr
    tags = EventAccumulator(str(run_dir)).Reload().Tags()["scalars"]
    assert {"losses/val_action_mse", "losses/train_probe_action_mse"} <= set(tags)


def test_bf16_autocast_and_compile_train(data_root, tmp_path):
    # the plumbing (flags, log, saved config) on aot_eager; inductor end to end: tests/test_fastpath.py
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--precision", "bf16",
             "--compile", "on", "--run-dir", str(tmp_path / "bf16"), *TINY], env={"SEQRL_COMPILE_BACKEND": "aot_eager"})
    assert p.returncode == 0, p.stderr
    evals = [json.loads(line) for line in (tmp_path / "bf16" / "evals.jsonl").read_text().splitlines()]
    assert np.isfinite(evals[-1]["score"])
    log = p.stdout + p.stderr
    assert "[seqrl] torch.compile: first update took" in log
    saved = yaml.safe_load((tmp_path / "bf16" / "config.yaml").read_text())
    assert (saved["precision"], saved["compile"]) == ("bf16", "on")
    fast = json.loads((tmp_path / "bf16" / "done.json").read_text())["fast_path"]  # what ran, and why
    assert (fast["precision"], fast["compile"], fast["source"]) == ("bf16", True, "forced")


def test_precision_auto_measures_once_and_says_so(data_root, tmp_path):
    """--precision auto times the update before training, says the ratio in the log, done.json and TensorBoard,
    and a second run of the same model on this machine reads the verdict from the cache."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = {"SEQRL_CACHE_DIR": str(tmp_path / "cache")}
    for name, said in (("first", "measured now"), ("second", "cached from")):
        p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--precision",
                 "auto", "--run-dir", str(tmp_path / name), *TINY], env=env)
        assert p.returncode == 0, p.stderr
        log = p.stdout + p.stderr
        assert "precision auto -> " in log and "x fp32's time in bf16" in log and said in log
        fast = json.loads((tmp_path / name / "done.json").read_text())["fast_path"]
        assert fast["source"] == said.split()[0].replace("cached", "cache") and fast["ratio"]["bf16"] > 0
        assert fast["precision"] == ("bf16" if fast["ratio"]["bf16"] <= 0.9 else "fp32")
    assert "fast_path/text_summary" in EventAccumulator(str(tmp_path / "second")).Reload().Tags()["tensors"]


def test_evaluate_records_video_or_says_why_not(data_root, tmp_path):
    from seqrl.envs.video import renderer_problem

    import gymnasium as gym

    run_dir = tmp_path / "run"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--run-dir", str(run_dir),
             *TINY, "--steps", "2", "--eval-every", "2"])
    assert p.returncode == 0, p.stderr
    p = run(["evaluate.py", str(run_dir), "--episodes", "1", "--targets", "500", "--video", str(tmp_path / "vid"),
             "--video-format", "gif", "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    os.environ.setdefault("MUJOCO_GL", "egl")
    problem = renderer_problem(lambda: gym.make("Hopper-v5", render_mode="rgb_array", width=32, height=32))
    if problem:  # no GL here: a clear message, no crash
        assert "video skipped: no offscreen OpenGL renderer" in p.stderr
    else:
        (gif,) = (tmp_path / "vid").iterdir()
        assert gif.name == "window_R500_seed0.gif" and gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_keep_checkpoints_keeps_each_evaluations_policy(data_root, tmp_path, capsys):
    """--keep-checkpoints: checkpoints/step_<N>.pt per evaluation, each the policy evaluated then (its step, the
    model's weights of that moment), evaluable again; without the flag, none."""
    import torch

    train = script("train_offline")
    run_dir = tmp_path / "run"
    assert train.main(["--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--run-dir", str(run_dir),
                       "--keep-checkpoints", *TINY]) == 0
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert kept == ["step_3.pt", "step_6.pt"]
    early, last = (torch.load(run_dir / "checkpoints" / k, weights_only=False) for k in kept)
    final = torch.load(run_dir / "last.pt", weights_only=False)
    assert (early["step"], last["step"]) == (3, 6) and "optimizer" not in early
    assert all(torch.equal(last["model"][k], final["model"][k]) for k in final["model"])
    assert any(not torch.equal(early["model"][k], final["model"][k]) for k in final["model"])  # not a copy of the end
    capsys.readouterr()
    assert script("evaluate").main([str(run_dir / "checkpoints" / "step_3.pt"), "--episodes", "1", "--targets", "500",
                                    "--device", "cpu"]) == 0
    assert "(step 3)" in capsys.readouterr().out
    other = tmp_path / "plain"
    assert train.main(["--env", "hopper", "--dataset", "medium", "--backbone", "mingru", "--run-dir", str(other),
                       *TINY]) == 0
    assert not (other / "checkpoints").exists()

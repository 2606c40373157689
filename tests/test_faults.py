"""Faults lose nothing (issue 34): destructive flags, divergence, a wrong env or swapped data, paths, full disks and
signals, the runner's API and config files. One test per class of fault; each asserts the one line said and that
nothing of an earlier run or of the user's files changed, byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from helpers import REPO
from test_cli import error_of, script
from test_mistakes import BASE, finished_run, run_copy, snapshot, steps_of  # noqa: F401 (fixtures)


def said(capsys, mod: str, argv: list[str], status: int = 2) -> str:
    """The one line a command ends with (its last line on stderr, after any progress bar), and no traceback."""
    assert script(mod).main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def user_folder(root: Path) -> Path:
    """A folder of a user's own files, one of them named as a run's config is."""
    folder = root / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.yaml").write_text("steps: 5\n")
    (folder / "important.txt").write_text("do not lose me\n")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return folder


# ---- 1. nothing the suite did not write is deleted ------------------------------------------------------------
def test_destructive_flags_and_outputs_delete_nothing_of_the_users_or_of_a_run(run_copy, tmp_path, capsys):
    mine = user_folder(tmp_path)
    theirs, run = snapshot(mine), snapshot(run_copy)

    err = error_of(capsys, "train_offline", [*BASE, "--run-dir", str(mine), "--overwrite"])
    assert "holds files seqrl did not write (important.txt, sub/)" in err and "nothing was deleted" in err
    # --overwrite on a finished run with a flag that fails a check made after the data loads: the old run stays
    err = error_of(capsys, "train_offline", [*BASE, "--run-dir", str(run_copy), "--overwrite", "--context-len", "500"])
    assert "--context-len 500 is longer than every episode" in err
    # no output path of any command is a file of a run, or a user's file it did not write
    err = error_of(capsys, "export", [str(run_copy), "--format", "torchscript", "--out", str(run_copy / "last.pt")])
    assert f"--out {run_copy / 'last.pt'}: a file of the run in {run_copy}; an export never replaces one" in err
    err = error_of(capsys, "evaluate", [str(run_copy), "--episodes", "1", "--json", str(run_copy / "done.json")])
    assert "a file of the run in" in err
    err = error_of(capsys, "export", [str(run_copy), "--out", str(mine / "important.txt")])
    assert "exists and is not a policy file export.py wrote; it is left as it is" in err
    err = error_of(capsys, "evaluate", [str(run_copy), "--episodes", "1", "--json", str(mine / "config.yaml")])
    assert "exists and is not an evaluation evaluate.py wrote" in err
    assert snapshot(mine) == theirs and snapshot(run_copy) == run
    assert not (mine / ".lock").exists()  # not even a lock file is left in the user's folder

    # an export replaces an earlier export, atomically (no temporary file left beside it)
    out = tmp_path / "policy.pt"
    for _ in range(2):
        assert script("export").main([str(run_copy), "--format", "torchscript", "--out", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("policy")] == ["policy.pt"]


# ---- 2. a diverged run is a failed run ------------------------------------------------------------------------
def test_a_diverged_run_fails_keeps_only_finite_weights_and_stays_out_of_the_tables(run_copy, tmp_path, capsys):
    import math

    from seqrl import results
    from seqrl.agents.checkpoint import load_checkpoint
    from seqrl.core import files
    from seqrl.core.errors import SeqRLError

    diverged = tmp_path / "diverged"
    err = said(capsys, "train_offline", [*BASE, "--run-dir", str(diverged), "--lr", "1e6", "--warmup-steps", "0",
                                         "--grad-clip", "0", "--checkpoint-every", "1"])
    assert err.startswith("error: Training diverged at update ") and ": its loss is nan. Try a lower --lr (now 1e+06)" in err
    assert "--grad-clip 0.25 (now off)" in err and "is kept; the run is not finished" in err
    assert not {"best.pt", "done.json", "evals.jsonl"} & {p.name for p in diverged.iterdir()}
    agent, _ = load_checkpoint(diverged / "last.pt")  # the weights of the update before it diverged, all finite
    assert f"update {agent.step}, finite" in err

    # a run that an older version let through (NaN written into evals.jsonl) is named and left out of the tables
    nan_run = tmp_path / "runs" / "seed1"
    shutil.copytree(run_copy, nan_run)
    (nan_run / "config.yaml").write_text((nan_run / "config.yaml").read_text().replace("seed: 0", "seed: 1"))
    records = [json.loads(line) for line in (nan_run / "evals.jsonl").read_text().splitlines()]
    for rec in records:
        for res in rec["results"]:
            res["normalized_mean"] = math.nan
    (nan_run / "evals.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    shutil.copytree(run_copy, tmp_path / "runs" / "seed0")
    before = snapshot(tmp_path / "runs")
    assert results.main([str(tmp_path / "runs"), "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    out = capsys.readouterr()
    assert "seed1 left out: its evaluation at update 3 is nan (not a finite number): the run diverged" in out.err
    table = (tmp_path / "res" / "results.csv").read_text()
    assert "nan" not in table.lower() and ",1,6," in table  # one seed, at update 6
    assert snapshot(tmp_path / "runs") == before

    # nothing non-finite is written into a JSON file: the file is left as it was
    summary = tmp_path / "done.json"
    summary.write_text("{}")
    with pytest.raises(SeqRLError, match=r"not written: last\.score is not a finite number"):
        files.write_json(summary, {"last": {"score": math.inf}})
    assert summary.read_text() == "{}"


# ---- 3. what a run says it is, it is --------------------------------------------------------------------------
def random_minari(root: Path, dataset_id: str, episodes: int, action_scale: float = 1.0) -> None:
    """A tiny Hopper-v5 Minari dataset of random actions (``action_scale`` times the action space's) under ``root``."""
    import gymnasium as gym
    import numpy as np

    from seqrl.core.tasks import TASKS
    from seqrl.datasets.minari_writer import write_dataset

    env, raw = gym.make("Hopper-v5"), []
    env.action_space.seed(1)
    for i in range(episodes):
        obs, _ = env.reset(seed=100 + i)
        ep = {"seed": 100 + i, "observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        for t in range(30):
            action = env.action_space.sample()
            obs, r, term, _, _ = env.step(action)
            for key, value in zip(("observations", "actions", "rewards", "terminations", "truncations"),
                                  (obs, action * action_scale, float(r), term, not term and t == 29)):
                ep[key].append(value)
            if term:
                break
        raw.append(ep)
    env.close()
    write_dataset(dataset_id, raw, "Hopper-v5", TASKS["hopper"].ref_scores, "random", "faults test data", root)


def test_the_env_the_data_and_the_checkpoint_are_the_runs_own(run_copy, data_root, tmp_path, capsys, monkeypatch):
    run = snapshot(run_copy)
    fresh = tmp_path / "new"
    # the env must be the data's: by the dataset's own env id, and an --eval-env of other sizes names --eval-env
    err = error_of(capsys, "train_offline", [*BASE, "--env", "halfcheetah", "--dataset", "test/hopper/medium-v0",
                                              "--run-dir", str(fresh)])
    assert "--env halfcheetah does not match the dataset: 'test/hopper/medium-v0' is hopper data (its env " \
           "Hopper-v5). Pass --env hopper" in err
    err = error_of(capsys, "train_offline", [*BASE, "--eval-env", "HalfCheetah-v5", "--run-dir", str(fresh)])
    assert "the env HalfCheetah-v5 (--eval-env) has 17 and 6. Give an --eval-env whose" in err
    assert not fresh.exists()

    # --resume on other data behind the same id (MINARI_DATASETS_PATH moved): refused, naming both
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "other"))
    random_minari(tmp_path / "other", "test/hopper/medium-v0", episodes=3)
    err = error_of(capsys, "train_offline", ["--resume", str(run_copy), "--steps", "9"])
    assert f"--resume {run_copy}: the data is not the run's. The run trained on 'test/hopper/medium-v0' (6 episodes" in err
    assert f"loaded now: 'test/hopper/medium-v0' (3 episodes" in err and str(tmp_path / "other") in err
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(data_root / "minari"))

    # another agent's last.pt in the run: refused before anything is written
    bc = tmp_path / "bc"
    assert script("train_offline").main([*BASE[:4], "--agent", "bc", "--steps", "2", "--eval-every", "2",
                                         "--eval-episodes", "1", "--device", "cpu", "--run-dir", str(bc)]) == 0
    shutil.copy(bc / "last.pt", run_copy / "last.pt")
    run["last.pt"] = (bc / "last.pt").read_bytes()
    capsys.readouterr()
    err = error_of(capsys, "train_offline", ["--resume", str(run_copy), "--steps", "9"])
    assert "its last.pt holds a bc agent, but the run's config.yaml says dt/transformer" in err
    assert snapshot(run_copy) == run

    # actions far outside the action space are said when the data loads
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "other"))
    random_minari(tmp_path / "other", "test/hopper/wide-v0", episodes=2, action_scale=50.0)
    assert script("train_offline").main([*BASE[:2], "--dataset", "test/hopper/wide-v0", *BASE[6:], "--steps", "1",
                                         "--eval-every", "1", "--run-dir", str(tmp_path / "wide")]) == 0
    out = capsys.readouterr().out
    assert "[seqrl] warning: " in out and "(100.0%) lie outside the env's action space [-1, 1]" in out
    assert "the policy's tanh head cannot reach them" in out


# ---- 4. paths, full disks and signals: one line, status != 0, nothing lost -------------------------------------
@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[bool]:
    """``path`` as a tmpfs mounted with ``options`` (``ro``, ``size=...``) while inside; yields False where this
    machine cannot mount (not root, no tmpfs), and leaves ``path`` a plain folder then."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = shutil.which("mount") is not None and os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)


def test_paths_that_cannot_be_written_are_refused_before_any_work(run_copy, tmp_path, capsys):
    from seqrl import grid, results
    from seqrl.datasets import make

    run = snapshot(run_copy)
    afile = tmp_path / "afile"
    afile.write_text("a user's file\n")
    cases = [
        ("train_offline", [*BASE, "--run-dir", str(afile)], f"--run-dir {afile}: a file stands where a folder is needed"),
        ("train_offline", [*BASE, "--run-dir", str(afile / "sub")], f"({afile} is a file)"),
        ("export", [str(run_copy), "--out", str(tmp_path)], f"--out {tmp_path}: a folder; give the path of a file"),
        ("evaluate", [str(run_copy), "--json", str(afile / "e.json")], f"--json {afile / 'e.json'}: a file stands"),
    ]
    for mod, argv, line in cases:
        assert line in error_of(capsys, mod, argv)
    assert grid.main(["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "gru", "--runs-root", str(afile)]) == 2
    assert f"--runs-root {afile}: a file stands where a folder is needed" in capsys.readouterr().err

    with tmpfs(tmp_path / "ro", "ro,size=64k") as mounted:
        if not mounted and os.geteuid() == 0:
            pytest.skip("a read-only folder needs a read-only mount here (root writes anywhere)")
        if not mounted:
            (tmp_path / "ro").chmod(0o555)
        ro = tmp_path / "ro"
        for mod, argv, flag in [("train_offline", [*BASE, "--run-dir", str(ro / "run")], "--run-dir"),
                                ("export", [str(run_copy), "--out", str(ro / "p.onnx")], "--out"),
                                ("evaluate", [str(run_copy), "--json", str(ro / "e.json")], "--json")]:
            assert "cannot write there" in error_of(capsys, mod, argv).split(flag, 1)[1]
        assert results.main([str(run_copy), "--out", str(ro / "res")]) == 2
        assert make.main(["--env", "hopper", "--out", str(ro), "--work-dir", str(tmp_path / "work")]) == 2  # before SAC
        assert grid.main(["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "gru", "--runs-root",
                          str(ro / "g")]) == 2
        err = capsys.readouterr().err
        assert err.count("cannot write there") == 3 and "Traceback" not in err
        assert not (tmp_path / "work").exists()
    assert snapshot(run_copy) == run and afile.read_text() == "a user's file\n"


def test_a_full_disk_keeps_the_last_good_checkpoint_and_records_no_evaluation_without_one(
        finished_run, tmp_path, capsys, monkeypatch):
    import errno

    from seqrl.agents import checkpoint
    from seqrl.core import files

    size = (finished_run / "last.pt").stat().st_size  # this model's checkpoint: room for two and a half of them
    with tmpfs(tmp_path / "disk", f"size={(2 * size + size // 2) // 1024 + 64}k") as mounted:
        if not mounted:  # no tmpfs here: the third checkpoint write (last.pt at update 6) meets a full disk
            writes, real = [], checkpoint.write_atomic

            def full(path: Path, data: bytes) -> None:
                writes.append(path)
                if len(writes) == 3:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                real(path, data)

            monkeypatch.setattr(checkpoint, "write_atomic", full)
        run_dir = tmp_path / "disk" / "run"
        line = said(capsys, "train_offline", [*BASE, "--run-dir", str(run_dir)])
        assert line == (f"error: {run_dir / 'last.pt'}: no space left on the device (the disk is full); free some space "
                        f"or write elsewhere. Training stopped at update 6 of 6; its last checkpoint ({run_dir / 'last.pt'}, "
                        f"update 3) is intact. Continue with: python train_offline.py --resume {run_dir}.")
        assert steps_of(run_dir) == [3] and not (run_dir / "done.json").exists()
        assert not [p for p in run_dir.iterdir() if p.suffix == ".tmp"]
        monkeypatch.undo()
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=8m", str(tmp_path / "disk")], check=True)
        assert script("train_offline").main(["--resume", str(run_dir)]) == 0
        assert steps_of(run_dir) == [3, 6]

    # the evaluation's line cannot be added after its checkpoints were written: a resume adds it from last.pt
    run_dir = tmp_path / "run"
    real_write = files.write_atomic

    def evals_full(path: Path, data: bytes) -> None:
        if path.name == "evals.jsonl" and b'"step": 6' in data:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(files, "write_atomic", evals_full)
    line = said(capsys, "train_offline", [*BASE, "--run-dir", str(run_dir)])
    assert "evals.jsonl: no space left on the device" in line and "its last checkpoint" in line and "update 6)" in line
    assert steps_of(run_dir) == [3]
    monkeypatch.undo()
    assert script("train_offline").main(["--resume", str(run_dir)]) == 0
    assert steps_of(run_dir) == [3, 6] and json.loads((run_dir / "done.json").read_text())["last"]["step"] == 6


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout_s: float = 180) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if ``proc`` ends or time runs out first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the process ended (status {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.2)


def ended(proc: subprocess.Popen) -> tuple[int, str]:
    """The process's exit status and the last line of its stderr."""
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err and err.strip(), (proc.returncode, out, err)
    return proc.returncode, err.strip().splitlines()[-1]


LONG = ["--steps", "100000", "--eval-every", "100000", "--checkpoint-every", "0", "--threads", "1"]


def test_signals_stop_every_command_with_one_line_and_leave_a_run_to_resume_or_rerun(data_root, finished_run, tmp_path):
    """Real signals to real processes: a grid stops its training child (which says where it stopped) and names the
    runs to resume; a training stopped before its first checkpoint can be run again; an evaluation stops without
    writing its --json."""
    popen = dict(cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    config = tmp_path / "long.yaml"
    config.write_text("env: hopper\ndataset: medium\nsteps: 100000\neval_every: 20\neval_episodes: 1\ncheckpoint_every: 0\n"
                      "batch_size: 8\nwarmup_steps: 2\ndevice: cpu\nthreads: 1\nmodel: {width: 16, n_layers: 1, context_len: 5}\n")
    root = tmp_path / "grid"
    grid = subprocess.Popen([sys.executable, "-m", "seqrl.grid", "--configs", str(config), "--backbones", "transformer",
                             "--seeds", "0", "--runs-root", str(root)], **popen)
    wait_for(lambda: any(root.glob("*/evals.jsonl")), grid, "first checkpoint of the grid's run")
    run = next(root.glob("*/evals.jsonl")).parent
    child = json.loads((run / ".lock").read_text())["pid"]
    grid.send_signal(signal.SIGTERM)
    status, line = ended(grid)
    assert status == 143 and line.startswith(f"[grid] stopped by SIGTERM: 1 run(s) stopped in training, each with its "
                                             f"last checkpoint kept (see its train.log): {run.name}. Run the same command")
    with pytest.raises(ProcessLookupError):  # the training child went with it
        os.kill(child, 0)
    assert ", 1 torch thread(s)," in (run / "train.log").read_text()  # the config's threads: 1, not the grid's
    log = (run / "train.log").read_text().strip().splitlines()[-1]
    assert log.startswith("stopped by SIGTERM at update ") and " of 100000; its last checkpoint (" in log
    assert log.endswith(f"is intact. Continue with: python train_offline.py --resume {run}.")

    run_dir = tmp_path / "early"
    train = subprocess.Popen([sys.executable, "train_offline.py", *BASE, *LONG, "--run-dir", str(run_dir)], **popen)
    wait_for(lambda: any(run_dir.glob("events.out.tfevents.*")), train, "the training's start")
    train.send_signal(signal.SIGINT)
    status, line = ended(train)
    assert status == 130 and line.startswith("stopped by SIGINT at update ")
    assert line.endswith("before its first checkpoint; nothing of the run is kept. Run the same command again.")
    again = subprocess.run([sys.executable, "train_offline.py", *BASE, "--run-dir", str(run_dir)], **popen)
    assert again.returncode == 0 and "holds a run stopped before its first checkpoint" in again.stdout
    assert steps_of(run_dir) == [3, 6]

    before, out = snapshot(finished_run), tmp_path / "eval.json"
    evaluate = subprocess.Popen([sys.executable, "evaluate.py", str(finished_run), "--episodes", "1000", "--json",
                                 str(out), "--device", "cpu"], **popen)
    assert "episodes per target" in evaluate.stdout.readline()  # it says what it evaluates, then starts
    evaluate.send_signal(signal.SIGINT)
    assert ended(evaluate) == (130, f"stopped by SIGINT during the evaluation; {out} was not written.")
    assert not out.exists() and snapshot(finished_run) == before


# ---- 5. the runner's API and config files ----------------------------------------------------------------------
def test_the_runner_and_config_files_refuse_mistakes_with_one_clear_message(finished_run, tmp_path, capsys):
    import numpy as np

    from seqrl.core.errors import SeqRLError
    from seqrl.runner import load_policy

    path = tmp_path / "policy.onnx"
    assert script("export").main([str(finished_run), "--out", str(path)]) == 0
    policy = load_policy(path)
    with pytest.raises(SeqRLError, match=r"act\(\) and observe\(\) follow reset\(targets\): call policy.reset"):
        policy.act(np.zeros((1, 11)))
    policy.reset([3600.0, 1800.0])
    with pytest.raises(SeqRLError, match=r"for the N = 2 envs given to reset\(\), got \(3, 11\): observations for 3 envs"):
        policy.act(np.zeros((3, 11)))
    obs = np.zeros((2, 11))
    obs[1, 4] = np.nan
    with pytest.raises(SeqRLError, match=r"act\(\): the observations of env\(s\) \[1\] hold NaN or infinity"):
        policy.act(obs)
    assert policy.act(np.zeros((2, 11))).shape == (2, 3)
    policy.observe(np.ones((2, 1)))  # (N, 1) is one reward per env, never broadcast to (N, N)
    assert policy.rtg.tolist() == [3599.0, 1799.0]
    with pytest.raises(SeqRLError, match=r"one reward per env, shape \(2,\) for the N = 2 envs given to reset\(\), "
                                         r"got \(3,\)"):
        policy.observe(np.ones(3))

    files = {"dup.yaml": b"steps: 5\nlr: 0.1\nsteps: 7\n", "latin.yaml": "steps: 5  # café\n".encode("latin-1"),
             "base.yaml": b"base: [1, 2]\nsteps: 5\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    said_for = {name: error_of(capsys, "train_offline", ["--config", str(tmp_path / name), "--dataset", "x"])
                for name in files}
    assert "the key 'steps' appears twice (lines 1 and 3); keep one" in said_for["dup.yaml"]
    assert "is not UTF-8 text (byte 0xe9 at offset 15); save it as UTF-8" in said_for["latin.yaml"]
    assert "base must name one config file (a path relative to this file" in said_for["base.yaml"]
    assert "got [1, 2]" in said_for["base.yaml"]
    assert {name: (tmp_path / name).read_bytes() for name in files} == files


HOLD = '''import importlib.abc, os, sys, time
class Hold(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["HOLD_AT"]:
            open(os.environ["HOLD_MARK"], "w").close()
            time.sleep(120)
        return None
sys.meta_path.insert(0, Hold())
'''

LOADING = [  # (command line, the module it loads after importing seqrl, its name in the line)
    *[([sys.executable, "-m", mod], mod, f"python -m {mod}")
      for mod in ("seqrl.grid", "seqrl.results", "seqrl.study", "seqrl.datasets.make")],
    *[([str(Path(sys.executable).parent / name)], mod, name) for name, mod in (
        ("seqrl-train", "seqrl.cli.train"), ("seqrl-evaluate", "seqrl.cli.evaluate"), ("seqrl-export", "seqrl.cli.export"),
        ("seqrl-grid", "seqrl.grid"), ("seqrl-results", "seqrl.results"), ("seqrl-study", "seqrl.study"),
        ("seqrl-make-dataset", "seqrl.datasets.make"))],
    *[([sys.executable, name], f"seqrl.cli.{name.split('_')[0].removesuffix('.py')}", name)
      for name in ("train_offline.py", "evaluate.py", "export.py")],
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_command_loads_ends_it_with_one_line(tmp_path, sig):
    """Every command, by each way it is started (python -m, the installed seqrl-* script, the checkout's scripts),
    stopped by a real signal while it is still importing its program (held there by an import hook, so that the
    signal lands in the import): one line, 128 + the signal's number, no traceback, nothing written."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOLD)
    for argv, module, name in LOADING:
        assert Path(argv[0]).exists() or argv[0] == sys.executable, f"{argv[0]}: not installed"
        mark, work = tmp_path / f"held-{module}", tmp_path / f"cwd-{module}"
        work.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), str(REPO)]),
               "HOLD_AT": module, "HOLD_MARK": str(mark)}
        proc = subprocess.Popen([*argv, "--help"], cwd=REPO if argv[-1].endswith(".py") else work, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(mark.exists, proc, f"{name} to start loading {module}", timeout_s=60)
        proc.send_signal(sig)
        status, line = ended(proc)
        assert (status, line) == (128 + sig, f"stopped by {sig.name} while {name} was loading; nothing was written."), \
            argv
        assert not any(work.iterdir())
        mark.unlink()

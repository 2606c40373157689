"""Ordinary mistakes get one clear message and lose nothing: reused or locked run directories, resumes that
would change the run, out-of-range flags of every entry point, damaged files. Each test that refuses
checks that the earlier run's files are byte-identical afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from test_cli import TINY, error_of, script

BASE = ["--env", "hopper", "--dataset", "medium", "--backbone", "transformer", *TINY]


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of the run (the directory's .lock is lock bookkeeping, not part of the run)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished_run(data_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "finished"
    assert script("train_offline").main([*BASE, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(finished_run, dest)
    (dest / ".lock").unlink(missing_ok=True)
    return dest


def steps_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "evals.jsonl").read_text().splitlines()]


# ---- run directories ---------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["finished", "unfinished"])
def test_a_run_directory_holding_a_run_is_refused(run_copy, capsys, state):
    if state == "unfinished":
        (run_copy / "done.json").unlink()
    before = snapshot(run_copy)
    err = error_of(capsys, "train_offline", [*BASE, "--run-dir", str(run_copy)])
    assert f"already holds a{'n' if state == 'unfinished' else ''} {state} run" in err
    assert f"--resume {run_copy}" in err and "--overwrite" in err and "another --run-dir" in err
    assert snapshot(run_copy) == before


def test_overwrite_deletes_the_old_run_first(run_copy, capsys):
    old_events = sorted(p.name for p in run_copy.glob("events.out.tfevents.*"))
    (run_copy / "final_eval.json").write_text('{"results": []}')  # evaluate.py's evaluation of the old run
    (run_copy / "checkpoints").mkdir()
    shutil.copy(run_copy / "best.pt", run_copy / "checkpoints" / "step_3.pt")  # --keep-checkpoints
    assert script("train_offline").main([*BASE, "--run-dir", str(run_copy), "--overwrite"]) == 0
    assert "--overwrite: deleted the earlier run" in capsys.readouterr().out
    assert steps_of(run_copy) == [3, 6]  # one run's evaluations, not two
    events = sorted(p.name for p in run_copy.glob("events.out.tfevents.*"))
    assert events and not set(events) & set(old_events)
    assert not (run_copy / "final_eval.json").exists() and not (run_copy / "checkpoints").exists()


def test_a_locked_run_directory_is_refused_naming_the_holder(run_copy, tmp_path, capsys):
    from seqrl.training.rundir import lock_run_dir

    before = snapshot(run_copy)
    lock = lock_run_dir(run_copy)  # as a training process holds it
    try:
        err = error_of(capsys, "train_offline", ["--resume", str(run_copy), "--steps", "9"])
        assert f"is in use by process {os.getpid()}" in err and "another --run-dir" in err
        fresh = tmp_path / "fresh"
        held = lock_run_dir(fresh)
        err = error_of(capsys, "train_offline", [*BASE, "--run-dir", str(fresh)])
        assert "is in use by process" in err
        held.release()
    finally:
        lock.release()
    assert {k: v for k, v in snapshot(run_copy).items() if k != ".lock"} == before


def test_a_claim_refused_before_the_holder_wrote_its_name_waits_for_it(tmp_path):
    """The holder writes who it is just after taking the lock (CI once refused a claim in between and named
    "another process"): the refused claim reads the lock file again until the name is there."""
    import fcntl
    import threading

    from seqrl.core.errors import SeqRLError
    from seqrl.training.rundir import LOCK_NAME, lock_run_dir

    run_dir = tmp_path / "held"
    run_dir.mkdir()
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked, nothing written yet
    info = {"pid": 4242, "host": "h", "started": "now", "argv": ["train_offline.py"]}
    late = threading.Timer(0.3, lambda: os.write(fd, json.dumps(info).encode()))
    late.start()
    try:
        with pytest.raises(SeqRLError, match="is in use by process 4242 on h"):
            lock_run_dir(run_dir)
    finally:
        late.join()
        os.close(fd)


def test_two_trainings_started_at_once_on_one_directory(data_root, tmp_path):
    run_dir = tmp_path / "same"
    cmd = [sys.executable, "train_offline.py", *BASE, "--steps", "30", "--eval-every", "15", "--run-dir", str(run_dir)]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = next(err for p, (_, err) in zip(procs, outs) if p.returncode == 2)
    assert "is in use by process" in loser or "already holds a finished run" in loser
    assert "Traceback" not in loser
    assert steps_of(run_dir) == [15, 30]


def test_a_stale_lock_of_a_dead_process_does_not_block_a_resume(run_copy, capsys):
    (run_copy / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "started": "earlier", "argv": []}))
    assert script("train_offline").main(["--resume", str(run_copy), "--steps", "9"]) == 0
    out = capsys.readouterr().out
    assert "changed on resume: --steps: run has 6, given 9" in out
    assert steps_of(run_copy) == [3, 6, 9]


@pytest.mark.parametrize("flags, said", [
    (["--backbone", "mingru"], "--backbone: run has 'transformer', given 'mingru'"),
    (["--width", "32"], "--width: run has 16, given 32"),
    (["--context-len", "4"], "--context-len: run has 5, given 4"),
    (["--dataset", "medium-replay"], "--dataset: run has 'medium', given 'medium-replay'"),
    (["--lr", "0.01"], "--lr: run has 0.0001, given 0.01"),
])
def test_resume_refuses_a_flag_that_changes_the_run(run_copy, capsys, flags, said):
    before = snapshot(run_copy)
    err = error_of(capsys, "train_offline", ["--resume", str(run_copy), "--steps", "9", *flags])
    assert said in err and "What may change on resume: " in err and "--steps" in err
    assert snapshot(run_copy) == before


def test_resume_of_a_finished_run_asks_for_more_steps(run_copy, capsys):
    before = snapshot(run_copy)
    err = error_of(capsys, "train_offline", ["--resume", str(run_copy)])
    assert "already finished its 6 updates" in err and "--steps N with N > 6" in err
    assert snapshot(run_copy) == before


# ---- flags checked before any work ---------------------------------------------------------------
MISSING = "/nonexistent/dataset.hdf5"  # were the flags checked after loading, the error would be about this file


@pytest.mark.parametrize("flags, said", [
    (["--batch-size", "0"], "--batch-size must be >= 1 (got 0)"),
    (["--steps", "0"], "--steps must be >= 1 (got 0)"),
    (["--lr", "-1"], "--lr must be > 0 (got -1.0)"),
    (["--lr", "nan"], "--lr must be > 0 (got nan)"),
    (["--eval-episodes", "0"], "--eval-episodes must be >= 1 (got 0)"),
    (["--eval-every", "0"], "--eval-every must be >= 1 (got 0)"),
    (["--eval-targets", "inf"], "--eval-targets must be one or more finite returns"),
    (["--dropout", "1"], "--dropout must be in [0, 1) (got 1.0)"),
    (["--context-len", "0"], "--context-len must be >= 1 (got 0)"),
    (["--width", "16", "--transformer.n-heads", "3"], "--transformer.n-heads must be >= 1 and divide --width (16) (got 3)"),
    (["--backbone", "s4d", "--s4d.d-state", "0"], "--s4d.d-state must be >= 1 (got 0)"),
    (["--seed", "-1"], "--seed must be in [0, 2**32) (got -1)"),
    (["--warmup-steps", "-5"], "--warmup-steps must be >= 0 (got -5)"),
    (["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
    (["--rtg-scale", "0"], "--rtg-scale must be > 0"),
    (["--log-every", "0"], "--log-every must be >= 1"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
    (["--threads", "-2"], "--threads must be >= 0"),
    (["--max-ep-len", "0"], "--max-ep-len must be >= 1"),
    (["--ema-decay", "1"], "--ema-decay must be in [0, 1)"),
    (["--backbone", "gru", "--mingru.gate", "ur"], "--backbone gru does not use --mingru.gate (options of mingru)"),
    (["--backbone", "mamba", "--s4d.dt-min", "0.01", "--s4d.d-state", "8"],
     "--backbone mamba does not use --s4d.d-state, --s4d.dt-min (options of s4d)"),
    (["--agent", "bc", "--bc.hidden", "0"], "--bc.hidden must be one positive width per hidden layer"),
    (["--agent", "bc", "--mingru.scan", "log"], "--agent bc does not use --mingru.scan"),
    (["--backbone", "nope"], "Unknown backbone 'nope'"),
    (["--env", "ant"], "ant"),
])
def test_bad_train_flags_are_refused_before_any_work(tmp_path, capsys, flags, said):
    run_dir = tmp_path / "run"
    err = error_of(capsys, "train_offline", ["--dataset", MISSING, "--run-dir", str(run_dir), *flags])
    assert said in err, err
    assert MISSING not in err and not run_dir.exists()


@pytest.mark.parametrize("yaml_text, said", [
    ("steps: abc\n", "steps: 'abc' is not an integer"),
    ("model: {backbone: mingru, options: {gate: bogus}}\n", "gate: 'bogus' is not one of default, ugi, ur"),
    ("model: {backbone: mingru, options: {gaet: ur}}\n", "unknown config key(s) 'gaet' (did you mean 'gate'?)"),
    ("model: {backbone: mingru, options: ur}\n", "the options of mingru must be a mapping of option: value"),
    ("model: [1]\n", "model must be a mapping of its fields"),
    ("mingru: {gate: ur}\n", "'mingru' (a backbone's options: model: {backbone: mingru, options: {...}}"),
    ("rollout: [windows]\n", "rollout: ['windows'] is not a list"),
    ("eval_episodes: 0\n", "--eval-episodes must be >= 1 (got 0)"),
])
def test_bad_config_file_values_are_refused(tmp_path, capsys, yaml_text, said):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    err = error_of(capsys, "train_offline", ["--config", str(cfg), "--dataset", MISSING])
    assert said in err, err


@pytest.mark.parametrize("flags, said", [
    (["--episodes", "0"], "--episodes must be >= 1 (got 0)"),
    (["--targets", "nan"], "--targets must be one or more finite returns"),
    (["--seed", "-3"], "--seed must be in [0, 2**32) (got -3)"),
])
def test_bad_evaluate_flags(finished_run, capsys, flags, said):
    before = snapshot(finished_run)
    err = error_of(capsys, "evaluate", [str(finished_run), *flags])
    assert said in err
    assert snapshot(finished_run) == before


def test_evaluate_checkpoint_choice_is_checked(finished_run, capsys):
    with pytest.raises(SystemExit) as e:
        script("evaluate").main([str(finished_run), "--checkpoint", "newest"])
    assert e.value.code == 2 and "last" in capsys.readouterr().err


# ---- files a crash cannot damage -------------------------------------------------------------------
def test_a_damaged_evals_line_is_reported_and_skipped(run_copy, tmp_path, capsys):
    from seqrl import results

    evals = run_copy / "evals.jsonl"
    evals.write_text(evals.read_text() + '{"step": 9, "resu')  # a crash mid-write under the old code
    assert results.main([str(run_copy), "--out", str(tmp_path / "res"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert f"{evals}:3: damaged line skipped" in err and "Traceback" not in err
    assert script("train_offline").main(["--resume", str(run_copy), "--steps", "9"]) == 0
    assert f"{evals}:3: damaged line skipped" in capsys.readouterr().err
    assert steps_of(run_copy) == [3, 6, 9]  # the damaged line is gone, the new evaluation follows


def test_a_crash_while_adding_an_evaluation_keeps_the_file_whole(tmp_path, monkeypatch):
    from seqrl.core import files

    path = tmp_path / "evals.jsonl"
    files.append_jsonl(path, {"step": 1, "results": []})
    before = path.read_bytes()

    def crash(*a, **k):
        raise KeyboardInterrupt  # the process dies between writing the new file and renaming it

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        files.append_jsonl(path, {"step": 2, "results": []})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["evals.jsonl"]


def test_results_refuses_a_missing_path(tmp_path, capsys):
    from seqrl import results

    assert results.main([str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err


# ---- grid and maker ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, said", [
    (["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "mingru", "lstmm"], "Unknown backbone 'lstmm'"),
    (["--configs", "configs/cpu/nope.yaml", "--backbones", "mingru"], "does not exist"),
    (["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "mingru", "--jobs", "0"], "--jobs must be >= 1"),
    (["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "mingru", "--seeds", "1", "1"], "distinct seeds"),
    (["--configs", "configs/cpu/hopper-medium.yaml", "--backbones", "gru", "--", "--mingru.gate", "ur"],
     "does not use --mingru.gate"),
])
def test_grid_checks_its_arguments_before_any_run(tmp_path, capsys, monkeypatch, argv, said):
    from seqrl import grid

    monkeypatch.chdir(REPO)
    cut = argv.index("--") if "--" in argv else len(argv)
    assert grid.main([*argv[:cut], "--runs-root", str(tmp_path / "g"), *argv[cut:]]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_grid_leaves_a_users_threads_flag_alone():
    from seqrl.grid import train_command

    assert train_command(["--config", "c.yaml"], 1)[-2:] == ["--threads", "1"]
    cmd = train_command(["--config", "c.yaml", "--threads", "2"], 1)
    assert cmd.count("--threads") == 1 and cmd[-1] == "2"
    assert train_command(["--config", "c.yaml", "--threads=3"], 1)[-1] == "--threads=3"


def test_grid_says_the_users_thread_count(tmp_path, capsys):
    from seqrl.grid import main as grid_main

    cfg = tmp_path / "bad.yaml"  # the grid prints its plan before the runs: one run that fails fast is enough
    cfg.write_text("agent: bc\ndataset: no/such/dataset-v0\nsteps: 1\n")
    grid_main(["--configs", str(cfg), "--seeds", "0", "--runs-root", str(tmp_path / "r"), "--", "--threads", "1"])
    assert "1 thread(s) each (--threads after --)" in capsys.readouterr().out


def test_maker_checks_its_flags(capsys):
    from seqrl.datasets import make

    assert make.main(["--env", "hopper", "--transitions", "0", "--medium-band", "5", "1", "--eval-episodes", "0"]) == 2
    err = capsys.readouterr().err
    assert "--transitions must be >= 1 (got 0)" in err and "--medium-band must be LOW HIGH with LOW < HIGH" in err
    assert "--eval-episodes must be >= 1" in err
    assert make.main(["--env", "antt"]) == 2
    assert "antt" in capsys.readouterr().err

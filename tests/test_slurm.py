"""The Slurm launcher: what a task asks for (flags and config file, checked), the status of submitted runs, and,
against a real single-node Slurm (scripts/slurm_local.sh), a grid as one job array, a requeued task resumed, a
local and a Slurm run of the same config alike, and a bad request refused in one line.

The real-Slurm tests skip with the reason where Slurm cannot start (not root, no apt-get); with
SEQRL_REQUIRE_SLURM=1 (set by .ci/run) that is a failure instead."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import REPO

from seqrl.core.errors import SeqRLError

TINY = {"env": "hopper", "dataset": "medium", "steps": 4, "eval_every": 4, "eval_episodes": 1, "batch_size": 8,
        "warmup_steps": 2, "log_every": 2, "device": "cpu"}


def grid(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqrl.grid", *args], cwd=REPO, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout)


# --- without Slurm ---


def test_a_task_request_from_file_and_flags(tmp_path):
    from seqrl.grid import check_launcher, parse_args
    from seqrl.slurm import SlurmResources, parse_time

    assert [parse_time(t) for t in (90, "90", "5:30", "2:00:00", "1-0", "1-02:03", "0-0:5:01")] == [
        90, 90, 6, 120, 1440, 1563, 6]
    for bad in ("soon", "1:2:3:4", "0", True, "4:59"):
        with pytest.raises(SeqRLError, match="minutes"):
            parse_time(bad)
    conf = tmp_path / "cluster.yaml"
    conf.write_text(yaml.safe_dump({"partition": "gpu", "time": "4:00:00", "cpus_per_task": 4, "gpus_per_task": 1,
                                    "mem": "16G", "array_parallelism": 20, "sbatch": {"account": "rl", "qos": "low"},
                                    "setup": ["module load cuda"]}))

    def request(*flags: str) -> SlurmResources | None:
        return check_launcher(parse_args(["--configs", "c.yaml", *flags]))

    res = request("--launcher", "slurm", "--slurm-config", str(conf), "--cpus-per-task", "2", "--sbatch", "qos=high",
                  "exclusive")
    assert res == SlurmResources(partition="gpu", time=240, cpus_per_task=2, gpus_per_task=1, mem="16G",
                                 array_parallelism=20, sbatch={"account": "rl", "qos": "high", "exclusive": True},
                                 setup=("module load cuda",))
    assert res.describe() == ("--partition gpu --time 240 --cpus-per-task 2 --gpus-per-task 1 --mem 16G --account rl "
                              "--qos high --exclusive")
    assert request() is None  # the local launcher, today's default
    refused = [
        (("--partition", "gpu"), "--partition: Slurm flags; add --launcher slurm"),
        (("--launcher", "slurm", "--jobs", "2"), "--jobs is the local launcher's"),
        (("--launcher", "slurm", "--until", "+60"), "--until is for a local sitting"),
        (("--launcher", "slurm", "--mem", "lots"), "mem 'lots': give Slurm's form"),
        (("--launcher", "slurm", "--time", "soon"), "time 'soon': give minutes"),
        (("--launcher", "slurm", "--cpus-per-task", "0"), "cpus_per_task must be a whole number >= 1"),
        (("--launcher", "slurm", "--sbatch", "array=0-3"), "'array' is set by the launcher"),
    ]
    for flags, message in refused:
        with pytest.raises(SeqRLError, match=re.escape(message)):
            request(*flags)
    conf.write_text("partion: gpu\n")
    with pytest.raises(SeqRLError, match=re.escape("unknown key 'partion' (did you mean 'partition'?)")):
        request("--launcher", "slurm", "--slurm-config", str(conf))
    with pytest.raises(SeqRLError, match="No such file"):
        request("--launcher", "slurm", "--slurm-config", str(tmp_path / "missing.yaml"))


def test_slurm_refusals_read_as_one_line():
    from seqrl.slurm import refusal

    assert refusal("sbatch: error: invalid partition specified: nope\n"
                   "sbatch: error: Batch job submission failed: Invalid partition name specified\n") == (
        "Invalid partition name specified (invalid partition specified: nope)")
    assert refusal("sbatch: error: Invalid generic resource (gres) specification\n") == (
        "Invalid generic resource (gres) specification")


def test_status_of_submitted_runs(tmp_path, monkeypatch, capsys):
    """Finished from done.json, queued and running from the queue, failed when a task left it unfinished."""
    import seqrl.slurm as slurm
    from seqrl.core.files import write_json

    runs = {f"hopper__medium__mingru__{s}__": f"7_{s}" for s in range(4)}
    (tmp_path / "slurm").mkdir()
    write_json(tmp_path / "slurm" / "7.json", {"job_id": "7", "submitted": "2026-01-01T00:00:00", "runs": runs,
                                                "resources": {}})
    (tmp_path / "hopper__medium__mingru__0__1").mkdir()
    (tmp_path / "hopper__medium__mingru__0__1" / "done.json").write_text("{}")
    (tmp_path / "hopper__medium__mingru__1__1").mkdir()
    (tmp_path / "hopper__medium__mingru__1__1" / "train.log").write_text(
        "train mingru:   1%|  | 25/3000 [00:00<00:17, 166.76upd/s]\rtrain mingru:   2%|  | 50/3000 [00:00<00:16]")
    (tmp_path / "hopper__medium__mingru__3__1").mkdir()
    (tmp_path / "hopper__medium__mingru__3__1" / "train.log").write_text("[seqrl] ...\nerror: out of memory\n\n")
    monkeypatch.setattr(slurm, "queue_states", lambda ids: {"7_1": ("RUNNING", "None"), "7_2": ("PENDING", "Resources")})
    found = slurm.runs_status(tmp_path)
    assert [(r.state, r.slurm_id) for r in found] == [("finished", "7_0"), ("running", "7_1"), ("queued", "7_2"),
                                                       ("failed", "7_3")]
    assert found[1].detail == "update 50/3000" and found[2].detail == "pending, Resources" and found[3].detail.endswith("train.log: error: out of memory")
    assert slurm.print_status(tmp_path) == 1  # a run failed
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"[grid] {tmp_path}: 4 runs: 1 queued, 1 running, 1 finished, 1 failed"
    monkeypatch.setattr(slurm, "queue_states", lambda ids: None)  # no squeue here: unknown, not failed
    assert [r.state for r in slurm.runs_status(tmp_path)] == ["finished", "unknown", "unknown", "unknown"]
    from seqrl.grid import main as grid_main

    assert grid_main(["--status", str(tmp_path / "elsewhere")]) == 2
    assert "no Slurm submission recorded there" in capsys.readouterr().err


def test_no_slurm_here_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import seqrl.slurm as slurm
    from seqrl.grid import main as grid_main

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "model": {"context_len": 5, "width": 16, "n_layers": 1}}))
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    assert grid_main(["--configs", str(tmp_path / "tiny.yaml"), "--backbones", "mingru", "--seeds", "0",
                      "--runs-root", str(tmp_path / "runs"), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --launcher slurm: no sbatch here" in err


# --- against a real single-node Slurm ---


@pytest.fixture(scope="module")
def slurm_cluster() -> str:
    """The local single-node Slurm (scripts/slurm_local.sh start: installs and starts it if it can); its partition."""
    p = subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh"), "start"], capture_output=True, text=True,
                       timeout=900)
    if p.returncode == 3:
        reason = p.stderr.strip()
        if os.environ.get("SEQRL_REQUIRE_SLURM") == "1":
            pytest.fail(f"SEQRL_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    assert p.returncode == 0, p.stdout + p.stderr
    return "debug"


def tiny_configs(folder: Path) -> tuple[Path, Path]:
    """A tiny Decision-model config and a tiny BC config (as tests/test_study.py's)."""
    dt, bc = folder / "tiny.yaml", folder / "tiny-bc.yaml"
    dt.write_text(yaml.safe_dump({**TINY, "model": {"context_len": 5, "width": 16, "n_layers": 1}}))
    bc.write_text(yaml.safe_dump({**TINY, "agent": "bc", "bc": {"hidden": [16]}}))
    return dt, bc


def submitted_job(out: str) -> str:
    m = re.search(r"\[grid\] submitted job (\d+): ", out)
    assert m, out
    return m.group(1)


def wait_for(root: Path, runs: int, timeout: float = 1200) -> list:
    """Poll the grid's status until none of its runs is queued or running; their statuses."""
    from seqrl.slurm import runs_status

    deadline = time.time() + timeout
    while True:
        found = runs_status(root)
        if len(found) == runs and all(r.state in ("finished", "failed") for r in found):
            return found
        assert time.time() < deadline, [(r.prefix, r.state, r.detail) for r in found]
        time.sleep(2)


def last_step(run_dir: Path) -> int:
    import torch

    return int(torch.load(run_dir / "last.pt", weights_only=False)["step"]) if (run_dir / "last.pt").is_file() else 0


def comparable(run_dir: Path) -> list[dict]:
    """A run's evaluations without their timings: what must not depend on the launcher."""
    records = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "time" not in k and not k.endswith("_s")} for r in records]


def test_a_grid_on_slurm_a_requeued_task_resumes_and_runs_match_local(data_root, slurm_cluster, tmp_path):
    """One grid submitted as a job array (2 configs x 2 seeds) and one longer run requeued mid-run
    (``scontrol requeue``): it resumes from its last.pt; the table; a re-submission skips every finished run; the
    same config and seed run locally gives the same evaluations."""
    dt, bc = tiny_configs(tmp_path)
    long = tmp_path / "long.yaml"  # 3000 updates (8-20 s here), a checkpoint every 25
    long.write_text(yaml.safe_dump({**yaml.safe_load(dt.read_text()), "steps": 3000, "checkpoint_every": 25,
                                    "eval_every": 3000, "log_every": 25}))
    long_root, root = tmp_path / "long", tmp_path / "runs"
    slurm = ["--launcher", "slurm", "--partition", slurm_cluster, "--time", "15", "--cpus-per-task", "1"]
    p = grid("--configs", str(long), str(bc), "--backbones", "mingru", "--seeds", "5", "--runs-root", str(long_root),
             *slurm)
    assert p.returncode == 0, p.stdout + p.stderr
    (record,) = (long_root / "slurm").glob("*.json")
    long_task = json.loads(record.read_text())["runs"]["hopper__medium__mingru__5__"]
    assert long_task == f"{submitted_job(p.stdout)}_0"  # a task of the array
    # the long run: requeued once it has a checkpoint past update 0, it resumes there (watched from its submission,
    # before the next grid is submitted: at full speed it takes seconds)
    long_run = None
    deadline = time.time() + 900
    while long_run is None or last_step(long_run) < 50:
        assert time.time() < deadline, "the long run never reached update 50"
        time.sleep(0.2)
        long_run = next(iter(long_root.glob("hopper__medium__mingru__*")), None)
    subprocess.run(["scontrol", "requeue", long_task], check=True, timeout=60)
    requeued_at = time.time()

    started = time.time()
    p = grid("--configs", str(dt), str(bc), "--backbones", "mingru", "--seeds", "0", "1", "--runs-root", str(root),
             *slurm, "--array-parallelism", "2")
    assert p.returncode == 0, p.stdout + p.stderr
    job = submitted_job(p.stdout)
    assert f"[grid] submitted job {job}: 4 task(s), one per run, at most 2 at a time" in p.stdout
    assert f"[grid] logs: {root}/slurm/{job}_<task>/" in p.stdout and f"--status {root}" in p.stdout
    print(p.stdout)

    found = wait_for(root, 4)
    grid_s = time.time() - started
    assert [r.state for r in found] == ["finished"] * 4, [(r.prefix, r.detail) for r in found]
    table = tmp_path / "table"
    p = subprocess.run([sys.executable, "-m", "seqrl.results", str(root), "--out", str(table)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    text = (table / "results.md").read_text()
    print(text)
    assert "| hopper-medium |" in text or "hopper" in text
    p = grid("--configs", str(dt), str(bc), "--backbones", "mingru", "--seeds", "0", "1", "--runs-root", str(root),
             *slurm)
    assert p.returncode == 0 and p.stdout.count("[grid] skip") == 4 and "nothing to submit" in p.stdout, p.stdout

    # the same config and seed run locally (one thread, as a task with one CPU): the same evaluations
    local = tmp_path / "local"
    p = grid("--configs", str(dt), "--backbones", "mingru", "--seeds", "0", "--runs-root", str(local), "--",
             "--threads", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    (a,), (b,) = local.glob("hopper__*"), root.glob("hopper__medium__mingru__0__*")
    assert comparable(a) == comparable(b)
    assert json.loads((a / "done.json").read_text())["last"] == json.loads((b / "done.json").read_text())["last"]

    found, other = wait_for(long_root, 2)
    print(f"grid of 4: {grid_s:.0f} s; long run finished {time.time() - requeued_at:.0f} s after its requeue")
    assert found.state == other.state == "finished", (found.detail, other.detail)
    log = (found.run_dir / "train.log").read_text()
    resumed = re.findall(rf"resuming {re.escape(str(found.run_dir))} at update (\d+)", log)
    assert len(resumed) == 1 and int(resumed[0]) >= 50, log[-2000:]
    assert len(list(long_root.glob("hopper__medium__mingru__*"))) == 1  # resumed in its directory, not anew
    assert json.loads((found.run_dir / "done.json").read_text())["updates"] == 3000
    print(f"requeued task {long_task}: resumed at update {resumed[0]}")


@pytest.mark.parametrize("flags, reason", [
    (("--partition", "nope"), "Invalid partition name specified (invalid partition specified: nope)"),
    (("--mem", "100000G"), "Requested node configuration is not available"),
    (("--gpus-per-task", "1"), "Invalid generic resource (gres) specification"),
])
def test_slurm_refuses_a_bad_request_in_one_line(data_root, slurm_cluster, tmp_path, flags, reason):
    dt, _ = tiny_configs(tmp_path)
    p = grid("--configs", str(dt), "--backbones", "mingru", "--seeds", "0", "--runs-root", str(tmp_path / "runs"),
             "--launcher", "slurm", *flags)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith(f"error: Slurm refused the job array: {reason}"), p.stderr
    assert not list((tmp_path / "runs" / "slurm").iterdir())  # nothing of the refused submission is left


def test_a_study_passes_the_launcher_through(data_root, slurm_cluster, tmp_path):
    """``seqrl.study run --launcher slurm`` submits through the same launcher (here refused: a bad partition), and
    refuses the local launcher's flags; ``status`` needs a submission."""
    tiny_configs(tmp_path)
    study = tmp_path / "tiny_study.yaml"
    study.write_text("seeds: [0]\nblocks:\n  - configs: tiny-bc.yaml\n")
    run = [sys.executable, "-m", "seqrl.study", "run", str(study), "--runs-root", str(tmp_path / "runs"),
           "--launcher", "slurm"]
    p = subprocess.run([*run, "--partition", "nope"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and p.stderr.startswith("error: Slurm refused the job array: Invalid partition name"), (
        p.stdout + p.stderr)
    p = subprocess.run([*run, "--jobs", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and p.stderr.startswith("error: --jobs is the local launcher's"), p.stderr
    p = subprocess.run([sys.executable, "-m", "seqrl.study", "status", str(study), "--runs-root", str(tmp_path / "runs")],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "no Slurm submission recorded there" in p.stderr, p.stderr

"""The committed run records (records/<study>/<run>/): each is a finished run that seqrl.results can read, with
no weights or TensorBoard files in git, so the README's study table can be rebuilt from a clean checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from helpers import REPO

from seqrl.results import load_runs
from seqrl.training.rundir import EVAL_KEYS, read_jsonl

REQUIRED = {"config.yaml", "evals.jsonl", "done.json"}
STUDY_REQUIRED = REQUIRED | {"train.log"}  # a grid's run (records/study, records/ab) keeps its log


def tracked_runs() -> dict[Path, set[str]]:
    """Run directories under records/ that git tracks, and the names of their tracked files."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the records are what git tracks")
    out = subprocess.run(["git", "ls-files", "records"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    runs: dict[Path, set[str]] = defaultdict(set)
    for line in out.splitlines():
        parts = Path(line).parts
        if len(parts) == 4:  # records/<study>/<run>/<file>
            runs[REPO / Path(*parts[:3])].add(parts[3])
    return runs


def test_every_committed_run_is_finished_readable_and_without_weights():
    runs = tracked_runs()
    for run, files in runs.items():
        grid_run = run.parent.name in ("study", "ab")
        need = STUDY_REQUIRED if grid_run else REQUIRED
        assert need <= files, f"{run.name}: a committed run needs {sorted(need)}; it has {sorted(files)}"
        assert not [f for f in files if f.endswith(".pt") or f.startswith("events.out.tfevents")], run.name
        done = json.loads((run / "done.json").read_text())
        evals = read_jsonl(run / "evals.jsonl", EVAL_KEYS)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert evals and evals[-1]["step"] == done["updates"] == cfg["steps"], run.name  # trained to the end
        assert cfg["precision"] == "fp32", f"{run.name}: the CPU protocol runs in fp32"
        if grid_run:  # the table's params and updates/s columns, and where it ran, without weights or events
            assert done["params"] > 0 and done["updates_per_s"] > 0 and done["machine"]["cpu"], run.name
    if runs:
        assert len(load_runs(sorted(runs))) == len(runs)  # seqrl.results reads every one

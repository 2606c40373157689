"""Faults lose nothing (issue 34): destructive flags, divergence, a wrong env or swapped data, paths, full disks and
signals, the runner's API and config files. One test per class of fault; each asserts the one line said and that
nothing of an earlier run or of the user's files changed, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_cli import error_of, script
from test_mistakes import BASE, finished_run, run_copy, snapshot  # noqa: F401 (fixtures)


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

    # an export replaces an earlier export, atomically (no temporary file left beside it)
    out = tmp_path / "policy.pt"
    for _ in range(2):
        assert script("export").main([str(run_copy), "--format", "torchscript", "--out", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("policy")] == ["policy.pt"]

"""A run directory's safety: one run per directory, one process at a time, files a crash cannot damage.

- ``claim_run_dir`` locks the directory for the life of the process (``flock`` on ``.lock``; the
  kernel drops it when the process dies, so a stale lock never blocks a resume) and refuses a
  directory that already holds a run unless the run is being resumed or ``--overwrite`` was given.
- ``check_resume`` refuses, on ``--resume``, a flag that would change the model, the data or the
  optimisation of the run being continued, and lists what it changes that may change.
- ``append_jsonl`` writes a record by rewriting the file atomically (temp file + rename), so a crash
  leaves the previous file whole; ``read_jsonl`` reports a damaged line by file and line number,
  skips it with a warning, and never raises on one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from seqrl.errors import SeqRLError

LOCK_NAME = ".lock"
# What makes a directory "hold a run". A grid's train.log alone (written before the run starts) does not.
RUN_FILES = ("config.yaml", "evals.jsonl", "last.pt", "best.pt", "done.json")
EVAL_KEYS = ("step", "results")  # what every evals.jsonl record has
# Fields a resumed run may take from the command line; every other field must equal the run's.
MAY_CHANGE_ON_RESUME = frozenset({
    "steps", "eval_every", "eval_episodes", "checkpoint_every", "keep_checkpoints", "log_every", "threads", "device",
    "download", "d4rl_cache", "config", "run_dir", "resume", "overwrite", "compile", "precision",
})


def run_files(path: Path) -> list[str]:
    """The run files in ``path`` (config, evaluations, checkpoints, done marker, TensorBoard events)."""
    if not path.is_dir():
        return []
    found = [n for n in RUN_FILES if (path / n).exists()]
    return found + sorted(p.name for p in path.glob("events.out.tfevents.*"))


def _holder(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text())
        return (f"process {info['pid']} on {info['host']} (started {info['started']}: "
                f"{' '.join(info.get('argv', []))[:200]})")
    except (OSError, ValueError, KeyError):
        return "another process"


@dataclass
class RunDirLock:
    """Held while a run trains; ``release`` (or process exit) frees it."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def lock_run_dir(run_dir: Path) -> RunDirLock:
    """Lock ``run_dir`` (made if missing) for this process, or refuse naming the process that holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no cross-process guard, said once
        warnings.warn("seqrl: no file locking on this platform; do not start two runs on one directory.", stacklevel=2)
        return RunDirLock(run_dir, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SeqRLError(
            f"Run directory {str(run_dir)!r} is in use by {_holder(lock_path)}. Wait for it to finish "
            "(or stop it), or give another --run-dir."
        ) from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": sys.argv}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    return RunDirLock(run_dir, fd)


def claim_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> RunDirLock:
    """Lock ``run_dir`` and make sure this run may write there (see the module docstring).

    A new run needs a directory without run files; ``overwrite`` deletes them first (under the lock,
    so never from under a running process). ``resume`` needs the run's files."""
    lock = lock_run_dir(run_dir)
    try:
        found = run_files(run_dir)
        if resume:
            if "last.pt" not in found:
                raise SeqRLError(f"--resume {str(run_dir)!r}: no last.pt there (found: {', '.join(found) or 'no run files'}); "
                                 "nothing to continue. Start a new run instead (drop --resume).")
        elif found and not overwrite:
            state = "a finished run" if "done.json" in found else "an unfinished run"
            raise SeqRLError(
                f"Run directory {str(run_dir)!r} already holds {state} ({', '.join(found)}). Continue it with "
                f"--resume {run_dir}, write this run elsewhere with another --run-dir, or pass --overwrite to "
                "delete the old run first."
            )
        elif found:
            for p in run_dir.iterdir():
                if p.name != LOCK_NAME:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            print(f"[seqrl] --overwrite: deleted the earlier run in {run_dir} ({', '.join(found)})")
    except BaseException:
        lock.release()
        raise
    return lock


def check_resume(saved: dict[str, Any], given: dict[str, Any], run_dir: Path) -> list[str]:
    """Refuse a resumed config that changes what the run is; return the allowed changes, as text. A nested
    mapping (a backbone's options, ``mingru: {gate: ur}``) is compared option by option (``--mingru.gate``)."""
    refused, allowed = [], []
    saved, given = _dotted(saved), _dotted(given)
    for key, value in given.items():
        old = saved.get(key)
        if old == value:
            continue
        flag = "--" + key.replace("_", "-")
        (allowed if key in MAY_CHANGE_ON_RESUME else refused).append(f"{flag}: run has {old!r}, given {value!r}")
    if refused:
        raise SeqRLError(
            f"--resume {str(run_dir)!r}: these flags would change the run being continued (its model, data or "
            f"training): {'; '.join(refused)}. Drop them to continue the run as it was, or start a new run "
            f"(another --run-dir). What may change on resume: "
            f"{', '.join('--' + k.replace('_', '-') for k in sorted(MAY_CHANGE_ON_RESUME - {'config', 'run_dir', 'resume'}))}."
        )
    return [a for a in allowed if not a.startswith(("--run-dir", "--resume", "--config"))]


def _dotted(values: dict[str, Any]) -> dict[str, Any]:
    """Nested mappings flattened one level: ``{"mingru": {"gate": "ur"}}`` -> ``{"mingru.gate": "ur"}``."""
    return {f"{k}.{sub}" if isinstance(v, dict) else k: x for k, v in values.items()
            for sub, x in (v.items() if isinstance(v, dict) else [(None, v)])}


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to ``path`` atomically: a crash leaves the old file or the new, never a partial line."""
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_atomic(path, old + (json.dumps(record) + "\n").encode())


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with these records, atomically."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in records).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: an interrupted write leaves the old file.
    A file that exists keeps its permission bits (the temporary file is private)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A damaged line (not JSON, not an object, or without a
    ``required`` key) is reported on stderr with the file and line number, and skipped."""
    records = []
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            problem = "" if isinstance(rec, dict) else "not a JSON object"
            problem = problem or ", ".join(f"no {k!r}" for k in required if k not in rec)
        except ValueError as e:
            problem = f"not valid JSON ({e})"
        if problem:
            print(f"[seqrl] warning: {path}:{i}: damaged line skipped, {problem}: {line[:80]!r}", file=sys.stderr)
            continue
        records.append(rec)
    return records


def logged_median(run_dir: Path, tag: str) -> float | None:
    """The median of a scalar the run logged to TensorBoard (e.g. ``charts/updates_per_s``), None if it has none."""
    import logging

    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # A resumed run's writer marks where it resumed (SummaryWriter purge_step); the reader then drops what the
    # interrupted process logged past the checkpoint, as TensorBoard shows it, and warns once per run: expected.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    if tag not in acc.Tags()["scalars"]:
        return None
    return float(np.median([e.value for e in acc.Scalars(tag)]))

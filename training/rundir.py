"""A run directory's safety: one run per directory, one process at a time, files a crash cannot damage.

- ``claim_run_dir`` locks the directory for the life of the process (``flock`` on ``.lock``; the
  kernel drops it when the process dies, so a stale lock never blocks a resume) and refuses a
  directory that already holds a run unless the run is being resumed or ``--overwrite`` was given;
  ``--overwrite`` deletes only what seqrl wrote there (``own_files``), and only once the new run's
  checks have passed (``Claim.clear``).
- ``check_resume`` refuses, on ``--resume``, a flag that would change the model, the data or the
  optimisation of the run being continued, and lists what it changes that may change.
- ``RunName`` and ``RunSummary`` are the one definition of a run directory's name and of its ``done.json``:
  written by training, read by the grid, the results and ``--resume``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqrl.core.errors import SeqRLError, flag
from seqrl.core.files import writable_folder, write_json

from .config import TrainConfig, may_change_on_resume

LOCK_NAME = ".lock"
# What makes a directory "hold a run". A grid's train.log alone (written before the run starts) does not.
RUN_FILES = ("config.yaml", "evals.jsonl", "last.pt", "best.pt", "done.json")  # done.json: RunSummary.FILE
EVAL_KEYS = ("step", "results")  # what every evals.jsonl record has


def run_files(path: Path) -> list[str]:
    """The run files in ``path`` (config, evaluations, checkpoints, done marker, TensorBoard events)."""
    if not path.is_dir():
        return []
    found = [n for n in RUN_FILES if (path / n).exists()]
    return found + sorted(p.name for p in path.glob("events.out.tfevents.*"))


def _holder(lock_path: Path, wait: float = 2.0) -> str:
    """Who holds the lock, from what it wrote into the lock file. The holder writes that just after taking the
    lock, so a claim refused in between finds the file empty: read again for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            info = json.loads(lock_path.read_text())
            return (f"process {info['pid']} on {info['host']} (started {info['started']}: "
                    f"{' '.join(info.get('argv', []))[:200]})")
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return "another process"
            time.sleep(0.05)


@dataclass
class RunDirLock:
    """Held while a run trains; ``release`` (or process exit) frees it."""

    path: Path
    fd: int | None
    made: bool = False  # this process made the lock file (a refused claim removes it again)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def withdraw(self) -> None:
        """Release, and remove the lock file if this process made it: a refused claim leaves a folder as it was."""
        self.release()
        if self.made:
            (self.path / LOCK_NAME).unlink(missing_ok=True)


def lock_run_dir(run_dir: Path) -> RunDirLock:
    """Lock ``run_dir`` (made if missing) for this process, or refuse naming the process that holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / LOCK_NAME
    made = not lock_path.exists()
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no cross-process guard, said once
        warnings.warn("seqrl: no file locking on this platform; do not start two runs on one directory.", stacklevel=2)
        return RunDirLock(run_dir, fd, made)
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
    return RunDirLock(run_dir, fd, made)


# Everything else seqrl writes into a run directory: kept checkpoints, evaluate.py's (and a study's) evaluations of
# the run, and the temporary files of a write a kill -9 interrupted. A grid's train.log is seqrl's too, but it is
# never deleted: the grid appends to it while a run it started (perhaps with --overwrite) goes on.
KEPT_DIR = "checkpoints"  # --keep-checkpoints: <run>/checkpoints/step_<N>.pt, one per evaluation
OTHER_OWN = ("*_eval.json", "*_eval.log", "*_eval.json.tmp", *(f"{n}.*.tmp" for n in RUN_FILES))
KEPT_LOG = "train.log"
EARLY_FILES = ("config.yaml",)  # what a run writes before its first checkpoint (besides its events)


def stopped_early(found: list[str]) -> bool:
    """Whether these run files (``run_files``) are those of a run stopped before its first checkpoint: its config
    and its TensorBoard events, no evaluation, no checkpoint (a config.yaml alone may be a user's)."""
    events = [n for n in found if n.startswith("events.out.tfevents.")]
    return bool(events) and set(found) - set(events) <= set(EARLY_FILES)


def own_files(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(the files and folders of ``run_dir`` that a run and the commands around it wrote, everything else in
    it). A ``checkpoints`` folder is the run's while it holds only ``step_<N>.pt`` files."""
    own, foreign = [], []
    for p in sorted(run_dir.iterdir()):
        if p.name in (LOCK_NAME, KEPT_LOG):
            continue
        if p.name == KEPT_DIR and p.is_dir() and not p.is_symlink():
            ours = all(q.is_file() and fnmatch.fnmatch(q.name, "step_*.pt*") for q in p.iterdir())
            (own if ours else foreign).append(p)
            continue
        is_own = p.is_file() and (p.name in RUN_FILES or p.name.startswith("events.out.tfevents.")
                                  or any(fnmatch.fnmatch(p.name, pat) for pat in OTHER_OWN))
        (own if is_own else foreign).append(p)
    return own, foreign


@dataclass
class Claim:
    """A run directory locked for this process, with the earlier run's files that this run replaces
    (``--overwrite``, or a run stopped before its first checkpoint): ``clear`` deletes them, once every check of
    the new run has passed."""

    lock: RunDirLock
    old: list[Path] = dataclasses.field(default_factory=list)
    why: str = ""

    def clear(self) -> None:
        """Delete the earlier run's files (never anything seqrl did not write: ``own_files``)."""
        if not self.old:
            return
        for p in self.old:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        print(f"[seqrl] {self.why}: deleted the earlier run in {self.lock.path} "
              f"({', '.join(p.name + ('/' if p.is_dir() else '') for p in self.old)})")
        self.old = []

    def release(self) -> None:
        self.lock.release()


def _names(paths: list[Path]) -> str:
    return ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths)


def claim_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Claim:
    """Lock ``run_dir`` and make sure this run may write there (see the module docstring).

    A new run needs a directory without run files; with ``overwrite`` (or when the run there stopped before its
    first checkpoint, so that nothing of it is worth keeping) the earlier run's files are replaced, by
    ``Claim.clear`` after the new run's checks. ``overwrite`` refuses a directory holding files seqrl did not
    write. ``resume`` needs the run's ``last.pt``."""
    writable_folder(run_dir, "--resume" if resume else "--run-dir")
    lock = lock_run_dir(run_dir)
    try:
        found = run_files(run_dir)
        own, foreign = own_files(run_dir)
        early = stopped_early(found) and not foreign
        if resume:
            if "last.pt" not in found:
                stopped = (" The run there stopped before its first checkpoint: start it again with the same command "
                           "without --resume (the directory is reused)." if early else
                           " Nothing to continue: start a new run instead (drop --resume).")
                raise SeqRLError(f"--resume {str(run_dir)!r}: no last.pt there (found: {', '.join(found) or 'no run files'})."
                                 + stopped)
            return Claim(lock)
        if found and not overwrite and not early:
            state = "a finished run" if "done.json" in found else "an unfinished run"
            raise SeqRLError(
                f"Run directory {str(run_dir)!r} already holds {state} ({', '.join(found)}). Continue it with "
                f"--resume {run_dir}, write this run elsewhere with another --run-dir, or pass --overwrite to "
                "delete the old run first."
            )
        if overwrite and foreign and own:
            raise SeqRLError(
                f"--overwrite {run_dir}: it also holds files seqrl did not write ({_names(foreign)[:300]}); "
                f"--overwrite deletes only a run's own files ({_names(own)[:200]}), so nothing was deleted. Move "
                "those files away, or give another --run-dir."
            )
        if early and not overwrite:
            print(f"[seqrl] {run_dir} holds a run stopped before its first checkpoint ({', '.join(found)}): "
                  "this run replaces it")
        return Claim(lock, own, "--overwrite" if overwrite else "a run stopped before its first checkpoint")
    except BaseException:
        lock.withdraw()
        raise


def run_file_at(path: Path) -> str | None:
    """What ``path`` is when it names a run's own file (config, checkpoint, evaluations, summary, events) in a
    folder that holds a run, whether the file exists yet or not: no command's output may go there. Else None."""
    path = Path(path)
    name, folder = path.name, path.parent
    if not set(run_files(folder)) - set(EARLY_FILES) and folder.name != KEPT_DIR:  # a config.yaml alone: a user's
        return None
    if name in RUN_FILES or name.startswith("events.out.tfevents.") or folder.name == KEPT_DIR:
        return f"a file of the run in {folder}" if path.exists() else f"the place of a file of the run in {folder}"
    return None


def remove_if_empty(run_dir: Path) -> None:
    """Remove ``run_dir`` if nothing but its lock file is in it (a run stopped before writing anything)."""
    try:
        if {p.name for p in run_dir.iterdir()} <= {LOCK_NAME}:
            (run_dir / LOCK_NAME).unlink(missing_ok=True)
            run_dir.rmdir()
    except OSError:
        pass  # gone already, or not ours to remove: left as it is


def check_resume(saved: dict[str, Any], given: dict[str, Any], run_dir: Path) -> list[str]:
    """Refuse a resumed config that changes what the run is; return the allowed changes, as text. Nested
    mappings (the model's config, a backbone's options) are compared field by field (``--width``,
    ``--mingru.gate``); what may change is what the schema marks so (``on_resume``)."""
    may_change = set(may_change_on_resume())
    refused, allowed = [], []
    saved, given = _dotted(saved), _dotted(given)
    for key, value in given.items():
        old = saved.get(key)
        if old == value:
            continue
        change = f"{dotted_flag(key, given)}: run has {old!r}, given {value!r}"
        (allowed if key in may_change else refused).append(change)
    if refused:
        shown = sorted(may_change - {"config", "run_dir", "resume"})
        raise SeqRLError(
            f"--resume {str(run_dir)!r}: these flags would change the run being continued (its model, data or "
            f"training): {'; '.join(refused)}. Drop them to continue the run as it was, or start a new run "
            f"(another --run-dir). What may change on resume: {', '.join(flag(k) for k in shown)}."
        )
    return [a for a in allowed if not a.startswith(("--run-dir", "--resume", "--config"))]


def dotted_flag(key: str, values: dict[str, Any]) -> str:
    """The flag of a dotted key of the saved config: ``model.width`` -> ``--width``, ``model.options.gate`` ->
    ``--<backbone>.gate``, ``bc.hidden`` -> ``--bc.hidden``."""
    parts = key.split(".")
    if parts[:2] == ["model", "options"]:
        return flag(f"{values.get('model.backbone', 'backbone')}.{parts[2]}")
    if parts[0] == "model":
        return flag(parts[1])
    return flag(key)


def _dotted(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened: ``{"model": {"options": {"gate": "ur"}}}`` -> ``{"model.options.gate": "ur"}``."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


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


@dataclass(frozen=True)
class RunName:
    """A run directory's name, CleanRL-style: ``<env>__<dataset>__<agent label>__<seed>__<unix time in ms>`` (the
    dataset as given, ``/`` as ``-``). Made by training, matched by the grid (``prefix``) and read back by
    ``parse``."""

    env: str
    dataset: str
    agent: str
    seed: int
    stamp: int | None = None

    @classmethod
    def of(cls, cfg: TrainConfig, stamp: int | None = None) -> RunName:
        """The name of ``cfg``'s run (``stamp`` None: the prefix alone)."""
        return cls(cfg.env or "env", cfg.dataset.replace("/", "-"), cfg.label(), cfg.seed, stamp)

    @classmethod
    def new(cls, cfg: TrainConfig) -> RunName:
        """A new run of ``cfg``, stamped now."""
        return cls.of(cfg, int(time.time() * 1000))

    @property
    def prefix(self) -> str:
        """Every run of the same config and seed starts with it."""
        return f"{self.env}__{self.dataset}__{self.agent}__{self.seed}__"

    def __str__(self) -> str:
        return self.prefix + ("" if self.stamp is None else str(self.stamp))

    @classmethod
    def parse(cls, name: str) -> RunName | None:
        """The parts of a run directory's name; None if it is not one."""
        parts = name.split("__")
        if len(parts) != 5 or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]), int(parts[4]) if parts[4].isdigit() else None)


@dataclass(frozen=True)
class RunSummary:
    """A finished run (``done.json``): written once training ends, read by ``--resume``, the grid and the results.

    ``data`` is the data's own level (its episodes, mean and best return and normalized score); ``last`` and
    ``best`` are evaluation records (``step``, ``score``, ``results``); ``wall_s`` sums the run's processes;
    ``updates_per_s`` is the
    median of ``charts/updates_per_s``; ``machine`` is the last process's (``seqrl.core.runtime``)."""

    dataset: str
    agent: str
    targets: list[float]
    data: dict[str, float]
    updates: int
    wall_s: float
    params: int
    updates_per_s: float | None
    machine: dict[str, Any]
    fast_path: dict[str, Any]  # the update's precision and compile, their timings and where they came from
    last: dict[str, Any]
    best: dict[str, Any]

    FILE = "done.json"

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / self.FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, run_dir: Path) -> RunSummary | None:
        """The run's summary; None if it has not finished. A damaged file is reported (what and where) and read
        as None, never raised on; fields of other versions are ignored, missing ones are None."""
        path = run_dir / cls.FILE
        if not path.is_file():
            return None
        try:
            values = json.loads(path.read_text())
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as e:
            print(f"[seqrl] warning: {path}: damaged, read as unfinished ({e})", file=sys.stderr)
            return None
        return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})


DATA_IDENTITY = ("name", "episodes", "transitions", "fingerprint")  # what --resume compares (not the location)


def describe_data(identity: dict[str, Any]) -> str:
    """``'local/hopper/medium-v0' (6 episodes, 209 transitions, fingerprint 1a2b..., from /data/...)``."""
    return (f"{identity.get('name')!r} ({identity.get('episodes')} episodes, {identity.get('transitions')} transitions, "
            f"fingerprint {identity.get('fingerprint')}, from {identity.get('location')})")

"""Grids on a Slurm cluster: one grid is one job array (submitted through submitit), one task per run.

    python -m seqrl.grid --configs ... --backbones mingru --seeds 0 1 2 --launcher slurm --slurm-config cluster.yaml
    python -m seqrl.grid --status runs        # which runs are queued, running, finished or failed

A task runs what the local launcher runs (``seqrl.grid.run_job``: the training program in the run's directory, with
its ``train.log``): a finished run is skipped, an unfinished one with a ``last.pt`` resumed with ``--resume``. So a
task that Slurm stops (time limit, preemption, ``scontrol requeue``) and starts again continues its run from the last
checkpoint, and run directories, ``done.json`` and results tables are those of a local grid. A submission is recorded
in ``<runs-root>/slurm/<job id>.json`` (its runs, task by task); submitit's files and each task's log are in
``<runs-root>/slurm/<job id>_<task>/``. A re-submitted grid skips the runs that are finished, queued or running.

What a task asks Slurm for (``SlurmResources``) comes from a YAML file (``--slurm-config``, its keys the fields'
names) and flags, flags winning. Nothing here imports submitit until a grid is submitted (``pip install
'seqrl[slurm]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import difflib
import io
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from seqrl.core.errors import SeqRLError
from seqrl.core.files import write_json
from seqrl.training.rundir import RunSummary

LAUNCHERS = ("local", "slurm")
SLURM_DIR = "slurm"  # under the runs root: submission records, submitit's files and the tasks' logs
OWN_SBATCH = ("array", "output", "error", "open-mode", "signal")  # set by the launcher and submitit
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING", "RESIZING")
RUNNING = ("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT")
MIN_TIME = 5  # minutes: a task is signalled (and requeued) up to 2.5 minutes before its limit
LOCAL_HINT = "a local Slurm for trying it: sudo bash scripts/slurm_local.sh start"


class GridJob(Protocol):
    """What the launcher needs of a grid's job (``seqrl.grid.Job``): the prefix of its run directories."""

    @property
    def prefix(self) -> str: ...


RunOne = Callable[..., tuple[Any, "Path | None", "int | None"]]  # seqrl.grid.run_job: (job, root, threads)


@dataclass(frozen=True)
class SlurmResources:
    """What each task of a grid's job array asks Slurm for, and how it starts on a node."""

    partition: str | None = None  # None: the cluster's default partition
    time: int = 60  # minutes per task; a run longer than that resumes after each limit (max_timeouts)
    cpus_per_task: int = 1  # also the run's torch threads unless --threads is among its flags
    gpus_per_task: int = 0
    mem: str | None = None  # per task, Slurm's form (8G, 500M); None: the partition's default
    array_parallelism: int | None = None  # at most this many tasks at once; None: as many as Slurm starts
    max_timeouts: int = 3  # how many times a task that reaches its time limit is requeued
    sbatch: dict[str, Any] = field(default_factory=dict)  # any other sbatch option: {account: lab, qos: high}
    setup: tuple[str, ...] = ()  # shell lines run before each task (module load ..., source venv/bin/activate)
    python: str | None = None  # the Python on the nodes (default: this one)

    def describe(self) -> str:
        """The request in sbatch's words, for messages."""
        parts = [f"--partition {self.partition}"] if self.partition else []
        parts += [f"--time {self.time}", f"--cpus-per-task {self.cpus_per_task}"]
        parts += [f"--gpus-per-task {self.gpus_per_task}"] if self.gpus_per_task else []
        parts += [f"--mem {self.mem}"] if self.mem else []
        parts += [f"--{k} {v}" if v is not True else f"--{k}" for k, v in self.sbatch.items()]
        return " ".join(parts) + ("" if self.partition else " (the default partition)")


FIELDS = tuple(f.name for f in dataclasses.fields(SlurmResources))
FLAG_FIELDS = ("partition", "time", "cpus_per_task", "gpus_per_task", "mem", "array_parallelism", "max_timeouts")


def parse_time(value: Any) -> int:
    """A time limit in whole minutes (rounded up) from minutes or Slurm's forms: ``M``, ``M:S``, ``H:M:S``,
    ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if isinstance(value, bool) or m is None:
        raise SeqRLError(f"time {value!r}: give minutes (90) or Slurm's D-HH:MM:SS, HH:MM:SS, MM:SS (e.g. 1-00:00:00).")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = a * 3600 + b * 60 + c
    else:  # M or M:S
        seconds = a * 60 + (b or 0)
    if seconds < MIN_TIME * 60:
        raise SeqRLError(f"time {value!r}: give {MIN_TIME} minutes or more. Slurm signals a task up to 2.5 minutes "
                         "before its limit (submitit's --signal USR2@90, and Slurm's 60 s resolution), and the task "
                         "is then requeued: a shorter limit would requeue it before it trains.")
    return -(-seconds // 60)


def _sbatch_options(where: str, value: Any) -> dict[str, Any]:
    """Extra sbatch options as a mapping (``KEY=VALUE`` strings or a YAML mapping), keys in sbatch's spelling."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [(v.split("=", 1) + [True])[:2] for v in value]
    else:
        raise SeqRLError(f"{where}: sbatch options are a mapping (account: lab) or KEY=VALUE strings (got {value!r}).")
    out = {}
    for key, val in items:
        key = str(key).lstrip("-").replace("_", "-")
        if key in OWN_SBATCH:
            raise SeqRLError(f"{where}: sbatch option {key!r} is set by the launcher (one task per run, logs under "
                             f"<runs-root>/{SLURM_DIR}); leave it out.")
        out[key] = val
    return out


def resources(values: dict[str, Any], where: str) -> SlurmResources:
    """``SlurmResources`` from a mapping (a config file's, or flags'), each value checked; a ``SeqRLError`` for the
    first wrong one, saying where."""
    for key in values:
        if key not in FIELDS:
            near = difflib.get_close_matches(str(key), FIELDS, n=1)
            raise SeqRLError(f"{where}: unknown key {key!r}{f' (did you mean {near[0]!r}?)' if near else ''}; the "
                             f"keys are: {', '.join(FIELDS)}.")
    v = dict(values)

    def whole(key: str, low: int) -> None:
        if key in v and v[key] is not None and (not isinstance(v[key], int) or isinstance(v[key], bool) or v[key] < low):
            raise SeqRLError(f"{where}: {key} must be a whole number >= {low} (got {v[key]!r}).")

    for key, low in (("cpus_per_task", 1), ("gpus_per_task", 0), ("array_parallelism", 1), ("max_timeouts", 0)):
        whole(key, low)
    if "time" in v:
        try:
            v["time"] = parse_time(v["time"])
        except SeqRLError as e:
            raise SeqRLError(f"{where}: {e}") from None
    if v.get("mem") is not None and not re.fullmatch(r"\d+[KMGT]?", str(v["mem"])):
        raise SeqRLError(f"{where}: mem {v['mem']!r}: give Slurm's form, a number with K, M, G or T (e.g. 8G).")
    if v.get("partition") is not None and not isinstance(v["partition"], str):
        raise SeqRLError(f"{where}: partition must be a name (got {v['partition']!r}).")
    if "sbatch" in v:
        v["sbatch"] = _sbatch_options(where, v["sbatch"] or {})
    if "setup" in v:
        setup = v["setup"] if isinstance(v["setup"], list) else [v["setup"]]
        if not all(isinstance(line, str) for line in setup):
            raise SeqRLError(f"{where}: setup is a list of shell lines (got {v['setup']!r}).")
        v["setup"] = tuple(setup)
    return SlurmResources(**v)


def read_resources(path: Path) -> dict[str, Any]:
    """The mapping of a launcher config file (YAML), unchecked."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SeqRLError(f"--slurm-config {path}: {e.strerror}.") from None
    except yaml.YAMLError as e:
        raise SeqRLError(f"--slurm-config {path}: not valid YAML ({getattr(e, 'problem', None) or e}).") from None
    if not isinstance(raw, dict):
        raise SeqRLError(f"--slurm-config {path}: a mapping of {', '.join(FIELDS)} (see docs/cluster.md).")
    return raw


def add_launcher_flags(ap: argparse.ArgumentParser) -> None:
    """The launcher choice and the Slurm flags, for ``seqrl.grid`` and ``seqrl.study run``."""
    ap.add_argument("--launcher", choices=LAUNCHERS, default="local",
                    help="local: training processes on this machine (default); slurm: one job array on a Slurm "
                         "cluster (submitit), one task per run; the command submits, prints the job id and returns")
    g = ap.add_argument_group("Slurm (--launcher slurm; flags win over --slurm-config)")
    g.add_argument("--slurm-config", type=Path, default=None, metavar="FILE",
                   help=f"YAML file of what each task asks for: {', '.join(FIELDS)} (docs/cluster.md)")
    g.add_argument("--partition", default=None, help="the partition (default: the cluster's default one)")
    g.add_argument("--time", default=None, metavar="LIMIT",
                   help="each task's time limit: minutes or D-HH:MM:SS (default 60); a longer run is requeued and "
                        "resumes from its last.pt")
    g.add_argument("--cpus-per-task", type=int, default=None, metavar="N",
                   help="CPUs per task (default 1), also the run's torch threads unless --threads follows --")
    g.add_argument("--gpus-per-task", type=int, default=None, metavar="N", help="GPUs per task (default 0)")
    g.add_argument("--mem", default=None, help="memory per task, Slurm's form: 8G, 500M (default: the partition's)")
    g.add_argument("--array-parallelism", type=int, default=None, metavar="N",
                   help="at most N tasks of the array at once (default: as many as Slurm starts)")
    g.add_argument("--max-timeouts", type=int, default=None, metavar="N",
                   help="how many times a task that reaches its time limit is requeued (default 3)")
    g.add_argument("--sbatch", nargs="+", default=None, metavar="KEY=VALUE",
                   help="other sbatch options, e.g. --sbatch account=lab qos=high constraint=a100 (a bare KEY: a "
                        "switch, e.g. exclusive)")


def resources_from_args(args: argparse.Namespace) -> SlurmResources | None:
    """The Slurm request of parsed flags (file, then flags over it); None for the local launcher, which refuses
    Slurm flags."""
    given = {k: getattr(args, k) for k in (*FLAG_FIELDS, "sbatch") if getattr(args, k) is not None}
    if args.launcher != "slurm":
        stray = [f"--{k.replace('_', '-')}" for k in given] + (["--slurm-config"] if args.slurm_config else [])
        if stray:
            raise SeqRLError(f"{', '.join(stray)}: Slurm flags; add --launcher slurm to submit to Slurm, or drop them.")
        return None
    values = read_resources(args.slurm_config) if args.slurm_config else {}
    where = f"--slurm-config {args.slurm_config}" if args.slurm_config else "Slurm flags"
    file_sbatch = _sbatch_options(where, values.get("sbatch") or {})
    values = {**values, **given}
    if "sbatch" in given:
        values["sbatch"] = {**file_sbatch, **_sbatch_options("--sbatch", given["sbatch"])}
    return resources(values, where)


# --- submitting ---


class RunTask:
    """One run of a grid as a Slurm task (submitit pickles it): ``run_one`` trains or resumes the run as the local
    launcher does. When Slurm stops the task (preemption, time limit) submitit calls ``checkpoint`` and requeues it;
    started again, the task finds the run's ``last.pt`` and resumes it (``--resume``)."""

    def __init__(self, run_one: RunOne, job: GridJob, root: Path, threads: int) -> None:
        self.run_one, self.job, self.root, self.threads = run_one, job, root, threads

    def __call__(self) -> str:
        """Train (or resume) the run; its directory. A failed run raises, so the task ends FAILED."""
        _, path, rc = self.run_one(self.job, self.root, self.threads)
        if rc == -signal.SIGTERM:
            raise RuntimeError(f"{path.name}: training stopped by SIGTERM: Slurm requeued, cancelled or timed out the "
                               "task. Requeued, it resumes from the run's last.pt.")
        if rc != 0:
            raise RuntimeError(f"{path.name}: training exited with code {rc}; see {path}/train.log")
        return str(path)

    def checkpoint(self) -> Any:
        """What submitit requeues: this task again (the run's own last.pt holds its state)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


@dataclass(frozen=True)
class Submission:
    """A grid submitted to Slurm, as recorded in ``<runs-root>/slurm/<job id>.json``."""

    job_id: str  # the array's (or, for one run, the job's) id
    submitted: str  # ISO time
    runs: dict[str, str]  # run prefix -> its Slurm job id (<array>_<task>)
    resources: dict[str, Any]

    @classmethod
    def read_all(cls, root: Path) -> list[Submission]:
        """The submissions recorded under ``root``, oldest first."""
        found = []
        for path in (root / SLURM_DIR).glob("*.json"):
            try:
                found.append(cls(**json.loads(path.read_text())))
            except (ValueError, TypeError, OSError) as e:
                print(f"[grid] warning: {path}: not a submission record, ignored ({e})", file=sys.stderr)
        return sorted(found, key=lambda s: s.submitted)


def newest_run(root: Path, prefix: str) -> tuple[Path | None, bool]:
    """The newest run directory with ``prefix`` under ``root``, and whether it finished (``done.json``)."""
    found = sorted(root.glob(prefix + "*"))
    return (found[-1], RunSummary.read(found[-1]) is not None) if found else (None, False)


def refusal(stderr: str) -> str:
    """Slurm's reason from sbatch's error lines, as one line: the 'submission failed' reason, then the others."""
    errors = [line.split("error:", 1)[1].strip() for line in stderr.splitlines() if "error:" in line]
    main = [e.split("failed:", 1)[1].strip() for e in errors if "submission failed:" in e]
    others = [e for e in errors if "submission failed:" not in e]
    if not main and not others:
        return " ".join(stderr.split()) or "sbatch failed without a reason"
    return (main or others)[0] + (f" ({'; '.join(others)})" if main and others else "")


def make_executor(root: Path, res: SlurmResources) -> Any:
    """A submitit SlurmExecutor writing under ``<root>/slurm``, asking for ``res``."""
    try:
        import submitit
    except ImportError:
        raise SeqRLError("--launcher slurm needs submitit: pip install 'seqrl[slurm]' (or pip install submitit).") from None
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise SeqRLError(f"--launcher slurm: no sbatch here (Slurm's commands are not on PATH). Submit from the "
                         f"cluster's login node, or use --launcher local; {LOCAL_HINT}.")
    ex = submitit.SlurmExecutor(folder=root / SLURM_DIR / "%j", max_num_timeout=res.max_timeouts, python=res.python)
    params: dict[str, Any] = {"job_name": "seqrl-grid", "time": res.time, "cpus_per_task": res.cpus_per_task,
                              # requeueable even where the cluster's JobRequeue=0: a preempted task comes back
                              "additional_parameters": {"requeue": True, **res.sbatch}}
    optional = {"partition": res.partition, "mem": res.mem, "gpus_per_task": res.gpus_per_task or None,
                "array_parallelism": res.array_parallelism, "setup": list(res.setup) or None}
    ex.update_parameters(**params, **{k: v for k, v in optional.items() if v is not None})
    return ex


def submit_tasks(root: Path, res: SlurmResources, tasks: list[RunTask]) -> list[str]:
    """Submit ``tasks`` as one job array; their Slurm job ids. A refusal is a ``SeqRLError`` with Slurm's reason."""
    ex = make_executor(root, res)
    folder = root / SLURM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    from submitit.core.utils import FailedJobError

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's errors; said once, below
            with ex.batch():
                jobs = [ex.submit(t) for t in tasks]
    except FailedJobError as e:  # sbatch's stderr
        for p in set(folder.iterdir()) - before:  # the pickles and script of the refused submission
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        raise SeqRLError(f"Slurm refused the job array: {refusal(str(e))}. Asked for: {res.describe()}. "
                         f"Check it against the cluster (sinfo: its partitions; scontrol show partition NAME: their "
                         f"limits) and change --slurm-config or the flags.") from None
    return [j.job_id for j in jobs]


def submit_grid(jobs: Sequence[GridJob], runs_root: Path, res: SlurmResources, run_one: RunOne, then: str) -> int:
    """Submit the grid's runs that are not finished, queued or running as one job array; record it; return 0
    without waiting (``--status`` follows it)."""
    root = runs_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    active = {s.prefix: s for s in runs_status(root, strict=False) if s.state in ("queued", "running")}
    todo = []
    for job in jobs:
        path, finished = newest_run(root, job.prefix)
        if finished:
            say(f"skip {path.name} (finished)")
        elif job.prefix in active:
            say(f"skip {job.prefix}* ({active[job.prefix].state} as job {active[job.prefix].slurm_id})")
        else:
            todo.append(job)
    if not todo:
        say(f"nothing to submit: all {len(jobs)} runs are finished, queued or running. {then}")
        return 0
    ids = submit_tasks(root, res, [RunTask(run_one, job, root, res.cpus_per_task) for job in todo])
    array = ids[0].split("_")[0]
    record = Submission(array, dt.datetime.now().isoformat(timespec="seconds"),
                        {job.prefix: i for job, i in zip(todo, ids)}, dataclasses.asdict(res))
    write_json(root / SLURM_DIR / f"{array}.json", dataclasses.asdict(record))
    at_once = f"at most {res.array_parallelism} at a time" if res.array_parallelism else "as many at once as Slurm starts"
    say(f"submitted job {array}: {len(todo)} task(s), one per run, {at_once}; {res.describe()}; runs into {root}")
    task = f"{array}_<task>" if "_" in ids[0] else array  # one run: a plain job, not an array
    say(f"logs: {root / SLURM_DIR}/{task}/{task}_0_log.out (each task), <run dir>/train.log (each run)")
    say(f"status: python -m seqrl.grid --status {root}   (or: squeue -j {array})")
    say(f"when they are finished: {then}")
    return 0


def say(message: str) -> None:
    """One line of the launcher's output."""
    print(f"[grid] {message}", flush=True)


# --- status ---


@dataclass(frozen=True)
class RunStatus:
    """Where one submitted run stands: queued, running, finished, failed (left the queue unfinished) or unknown
    (no queue to ask); its Slurm job id, newest run directory and a detail (Slurm's reason, or the log to read)."""

    prefix: str
    state: str
    slurm_id: str
    run_dir: Path | None
    detail: str = ""


def queue_states(ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """Slurm job id (``<array>_<task>``) -> (state, reason) of the given jobs still in the queue; None when there is
    no queue to ask (no squeue here, or it fails)."""
    if shutil.which("squeue") is None:
        return None
    arrays = sorted({i.split("_")[0] for i in ids})
    if not arrays:
        return {}
    p = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(arrays)], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        return {} if "Invalid job id" in p.stderr else None  # every one of them has left the queue
    out = {}
    for line in p.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            out[parts[0]] = (parts[1], parts[2])
    return out


def last_line(path: Path) -> str:
    """The last non-empty line of a log (what a failed run said last), or ''."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def progress(run_dir: Path | None) -> str:
    """How far a training run is, from the progress bar at the end of its ``train.log`` (``update 1200/3000``)."""
    if run_dir is None:
        return ""
    try:
        with open(run_dir / "train.log", "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    found = re.findall(r"(\d+)/(\d+) \[", tail)
    return f"update {found[-1][0]}/{found[-1][1]}" if found else ""


def run_state(prefix: str, slurm_id: str, root: Path, queue: dict[str, tuple[str, str]] | None) -> RunStatus:
    """One run's status from its directory (finished or not) and the queue (its task queued, running or gone)."""
    path, finished = newest_run(root, prefix)
    if finished:
        return RunStatus(prefix, "finished", slurm_id, path)
    if queue is None:
        return RunStatus(prefix, "unknown", slurm_id, path, "no squeue here to ask")
    state, reason = queue.get(slurm_id, ("", ""))
    if state in QUEUED:
        return RunStatus(prefix, "queued", slurm_id, path, state.lower() + (f", {reason}" if reason not in ("", "None") else ""))
    if state:
        return RunStatus(prefix, "running" if state in RUNNING else state.lower(), slurm_id, path, progress(path))
    task_log = root / SLURM_DIR / slurm_id / f"{slurm_id}_0_log.out"
    log = path / "train.log" if path is not None and (path / "train.log").is_file() else task_log
    said = last_line(log)
    return RunStatus(prefix, "failed", slurm_id, path, f"left the queue unfinished; see {log}" + (f": {said}" if said else ""))


def runs_status(root: Path, strict: bool = True) -> list[RunStatus]:
    """The status of every run submitted under ``root`` (its latest submission); ``strict``: a ``SeqRLError`` when
    nothing was submitted there."""
    latest: dict[str, str] = {}
    for s in Submission.read_all(root):
        latest.update(s.runs)
    if not latest and strict:
        raise SeqRLError(f"--status {root}: no Slurm submission recorded there ({root / SLURM_DIR}/<job id>.json is "
                         "written by --launcher slurm); give the --runs-root the grid was submitted with.")
    queue = queue_states(list(latest.values()))
    return [run_state(prefix, sid, root, queue) for prefix, sid in latest.items()]


def print_status(runs_root: Path) -> int:
    """Print each submitted run's status under ``runs_root`` and the counts; 1 if a run failed, else 0."""
    root = runs_root.resolve()
    found = runs_status(root)
    counts = {s: sum(r.state == s for r in found) for s in ("queued", "running", "finished", "failed")}
    width = max(len(r.prefix) for r in found) + 24
    for r in found:
        name = r.run_dir.name if r.run_dir is not None else r.prefix + "*"
        print(f"  {r.state:9} {name:{width}} job {r.slurm_id}" + (f"  ({r.detail})" if r.detail else ""))
    others = len(found) - sum(counts.values())
    print(f"[grid] {root}: {len(found)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + (f", {others} other" if others else ""))
    return 1 if counts["failed"] else 0

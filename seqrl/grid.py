"""Run a grid of trainings: configs (tasks) x backbones x seeds, sequentially or as parallel processes.

    python -m seqrl.grid --configs configs/cpu/hopper-medium.yaml configs/cpu/bc-hopper-medium.yaml \\
        --backbones transformer mingru --seeds 0 1 2 --jobs 2 [-- --steps 3000 ...extra train_offline.py flags]

A config whose agent is BC (``agent: bc``, configs/cpu/bc-*.yaml) makes one run per seed whatever
``--backbones`` says (BC has no backbone). Flags after ``--`` go to every run (e.g. a recipe option
for an A/B arm: ``-- --ema-decay 0.999``); they are part of the run's label, so the arms of an A/B
get their own directories and rows. Each run gets its own directory
``<runs-root>/<env>__<dataset>__<agent label>__<seed>__<unix time>`` (CleanRL's naming; the label
is ``TrainConfig.label``: ``bc``, ``mingru``, ``mingru+ema0.999``, ...) and a ``train.log``. A run whose directory already holds a finished run
(``done.json``) is skipped, so a grid can be re-run after an interruption; an unfinished one
is resumed exactly (``--resume``). With ``--jobs N`` each process gets ``cores / N`` threads.
``--until HH:MM`` (or ``+MINUTES``) starts a run only if it is expected to finish by then, so a sitting
that ends at a known time spends its last hour on short runs instead of runs it will kill: the
expected time is the median ``wall_s`` of the finished runs under the runs root most like it (see
``expected_seconds``), plus 10% and a minute; a run with none to go by is started.
Then: ``python -m seqrl.results <runs-root>``.

``--launcher slurm`` submits the grid to a Slurm cluster instead, one job array with one task per run, and returns;
``--status <runs-root>`` says which runs are queued, running, finished or failed (``seqrl.slurm``, docs/cluster.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

import yaml

from seqrl.agents.kinds import AGENTS
from seqrl.cli.args import parse_train_args
from seqrl.training.config import TrainConfig, check_config
from seqrl.core.command import Stopped, exit_status_of, run_command, signals_ignored, stop_on_signals, stopped_by
from seqrl.core.errors import SEED_RULE, SeqRLError, check_flags, seed_ok
from seqrl.core.files import writable_folder, write_atomic
from seqrl.training.rundir import RunName, RunSummary
from seqrl.core.runtime import cpu_model, usable_cores
from seqrl.slurm import SlurmResources, add_launcher_flags, print_status, resources_from_args, submit_grid



@dataclass
class Job:
    config: Path
    backbone: str | None  # None: the config's agent has no backbone (BC)
    seed: int
    extra: list[str]

    @property
    def args(self) -> list[str]:
        """train_offline.py's flags for a new run of this job."""
        backbone = [] if self.backbone is None else ["--backbone", self.backbone]
        return ["--config", str(self.config), *backbone, "--seed", str(self.seed), *self.extra]

    @cached_property
    def cfg(self) -> TrainConfig:
        """The job's fully resolved config (YAML, backbone, seed and extra flags)."""
        return parse_train_args(self.args)

    @cached_property
    def name(self) -> RunName:
        """The name of the job's run, without its time stamp."""
        return RunName.of(self.cfg)

    @property
    def prefix(self) -> str:
        return self.name.prefix


def make_jobs(configs: list[Path], backbones: list[str] | None, seeds: list[int], extra: list[str]) -> list[Job]:
    """config x backbone x seed (a BC config: x seed only), one job per distinct run prefix, in order.

    Every job's config is resolved and checked, so a bad config or flag fails now, not mid-grid."""
    jobs: dict[str, Job] = {}
    for c in configs:
        probe = ["--backbone", backbones[0]] if backbones else []  # a file may hold that backbone's options
        cfg = parse_train_args(["--config", str(c), *probe, *extra])
        if cfg.on_backbone and not backbones:
            raise SeqRLError(f"{c} trains the Decision model: say which backbones with --backbones NAME [NAME ...].")
        for b in (backbones or []) if cfg.on_backbone else [None]:
            for s in seeds:
                job = Job(c.resolve(), b, s, extra)
                check_config(job.cfg)
                jobs.setdefault(job.prefix, job)
    return list(jobs.values())


def existing(root: Path, job: Job) -> tuple[Path | None, bool]:
    """The newest run directory of this job, and whether it finished."""
    found = sorted(root.glob(job.prefix + "*"))
    if not found:
        return None, False
    return found[-1], RunSummary.read(found[-1]) is not None


def finished_runs(root: Path) -> list[tuple[str, str, str, float]]:
    """(env__dataset, agent label, CPU model, wall seconds summed over the run's processes) of each finished run
    under ``root``."""
    runs = []
    for run_dir in sorted(p.parent for p in root.glob(f"*/{RunSummary.FILE}")):
        name, done = RunName.parse(run_dir.name), RunSummary.read(run_dir)
        if name is None or done is None or not isinstance(done.wall_s, (int, float)):
            continue  # not a run of seqrl's naming, or a damaged summary: nothing to estimate from
        cpu = str((done.machine or {}).get("cpu", ""))
        runs.append((f"{name.env}__{name.dataset}", str(done.agent), cpu, float(done.wall_s)))
    return runs


def state_agent(label: str) -> bool:
    """Whether a run's agent label names a kind that is not on a sequence backbone (BC, IQL)."""
    return label in AGENTS and "model" not in AGENTS[label].groups


def expected_seconds(job: Job, runs: list[tuple[str, str, str, float]], cpu: str) -> tuple[float, str] | None:
    """The median wall time of the finished runs most like ``job``, and which: the same task and agent on this
    CPU, else the same agent on this CPU (another task), else the same task and agent on any CPU, else the same
    agent anywhere, else another agent of its kind (BC, or a Decision model: a backbone not run yet) on this
    CPU, then anywhere. None when no finished run is of its kind."""
    task, agent = f"{job.name.env}__{job.name.dataset}", job.name.agent
    tiers = [("this task on this CPU", lambda r: r[0] == task and r[2] == cpu),
             ("other tasks on this CPU", lambda r: r[2] == cpu),
             ("this task on another CPU", lambda r: r[0] == task),
             ("other tasks on another CPU", lambda r: True)]
    for how, keep in tiers:
        walls = [r[3] for r in runs if r[1] == agent and keep(r)]
        if walls:
            return statistics.median(walls), f"median of {len(walls)} finished {agent} run(s), {how}"
    kind = agent.upper() if state_agent(agent) else "Decision-model"
    for how, keep in [("on this CPU", lambda r: r[2] == cpu), ("on any CPU", lambda r: True)]:
        walls = [r[3] for r in runs if (r[1] == agent if state_agent(agent) else not state_agent(r[1])) and keep(r)]
        if walls:
            return statistics.median(walls), f"median of {len(walls)} finished {kind} run(s) of other agents, {how}"
    return None


def parse_until(text: str, now: dt.datetime) -> dt.datetime:
    """``HH:MM`` (its next occurrence, local time) or ``+MINUTES`` from ``now``."""
    try:
        if text.startswith("+"):
            return now + dt.timedelta(minutes=float(text[1:]))
        at = dt.datetime.combine(now.date(), dt.time.fromisoformat(text))
    except ValueError:
        raise SeqRLError(f"--until {text!r}: give a time of day HH:MM or +MINUTES from now (e.g. --until 17:30, --until +150).") from None
    return at if at > now else at + dt.timedelta(days=1)


def threads_flag(args: list[str]) -> str | None:
    """The value of ``--threads`` in ``args`` (``--threads N`` or ``--threads=N``), if given."""
    for i, a in enumerate(args):
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
        if a == "--threads" and i + 1 < len(args):
            return args[i + 1]
    return None


def train_command(args: list[str], threads: int | None) -> list[str]:
    """The training program (``seqrl.cli.train``, what train_offline.py runs) with ``args``, by module so an
    installed package needs no checkout; the grid's thread count unless the user's flags (after ``--``) set one or
    ``threads`` is None (the run's config sets its own)."""
    given = threads is None or threads_flag(args) is not None
    return [sys.executable, "-m", "seqrl.cli.train", *args, *([] if given else ["--threads", str(threads)])]


class Children:
    """The training processes a grid waits for. A SIGINT or SIGTERM to the grid stops them (``stop``: each is sent
    SIGTERM and says in its train.log where it stopped, its last checkpoint kept) and starts no new one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, subprocess.Popen] = {}  # run directory name -> its training process
        self.stopping = False

    def run(self, name: str, cmd: list[str], log: IO[str], env: dict[str, str] | None = None) -> int | None:
        """Run ``cmd`` to its end; its exit status, or None when the grid is stopping (it is not started)."""
        with self.lock:
            if self.stopping:
                return None
            proc = self.running[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.running.pop(name, None)

    def stop(self, grace_s: float = 120.0) -> list[str]:
        """Stop every running child and wait for it (killed after ``grace_s``); their run directories' names."""
        with self.lock:
            self.stopping = True
            procs = dict(self.running)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return sorted(procs)


def say(message: str) -> None:
    """One progress line, written whole: jobs run in threads, and print's separate newline could interleave."""
    sys.stdout.write(f"[grid] {message}\n")
    sys.stdout.flush()


def fits(job: Job, root: Path, until: dt.datetime | None) -> bool:
    """Whether ``job`` is expected to finish before ``until`` (always, without a deadline or an estimate)."""
    if until is None:
        return True
    estimate = expected_seconds(job, finished_runs(root), cpu_model())
    if estimate is None:
        say(f"{job.prefix}*: no finished run of its kind to estimate its time from; starting it")
        return True
    seconds, how = estimate
    need = dt.timedelta(seconds=1.1 * seconds + 60)
    left = until - dt.datetime.now()
    if need <= left:
        return True
    say(f"not started: {job.prefix}* needs about {need.total_seconds() / 60:.0f} min ({how}), "
        f"{max(left.total_seconds(), 0) / 60:.0f} min left before --until {until:%H:%M}")
    return False


def run_job(job: Job, root: Path, threads: int, until: dt.datetime | None = None,
            children: Children | None = None) -> tuple[Job, Path | None, int | None]:
    """Train (or resume) ``job``; its run directory and exit code, or (job, None, None) when it does not fit (or
    the grid is stopping). ``threads``: the grid's, for a run whose config sets none."""
    children = children or Children()
    if children.stopping:
        return job, None, None
    path, finished = existing(root, job)
    if finished:
        say(f"skip {path.name} (finished)")
        return job, path, 0
    if not fits(job, root, until):
        return job, None, None
    if path is not None and (path / "last.pt").is_file():
        args = ["--resume", str(path), *job.extra]
        say(f"resume {path.name}")
    else:
        earlier, path = path, root / str(RunName.new(job.cfg))
        args = [*job.args, "--run-dir", str(path)]
        say(f"start {path.name}" + (f" ({earlier.name} stopped before its first checkpoint; left as it was)"
                                    if earlier is not None else ""))
    path.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(path / "train.log", "a") as log:
        rc = children.run(path.name, train_command(args, None if job.cfg.threads else threads), log)
    if rc is None:
        return job, None, None
    minutes = (time.monotonic() - start) / 60
    state = "done" if rc == 0 else "stopped" if children.stopping else f"FAILED ({exit_status_of(rc)}, see train.log)"
    say(f"{state} {path.name} ({minutes:.1f} min)")
    return job, path, rc


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The grid's flags (those before ``--``)."""
    ap = argparse.ArgumentParser(prog="python -m seqrl.grid", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", type=Path, default=None, help="one YAML per task (configs/...)")
    ap.add_argument("--backbones", nargs="+", default=None,
                    help="registry names (needed by Decision-model configs; BC configs make one run per seed)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed (default: 0 1 2)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="parallel training processes (local launcher; default 1), each with cores / jobs threads "
                         "unless --threads is given after --")
    ap.add_argument("--runs-root", type=Path, default=Path("runs"),
                    help="folder of the run directories (a finished run there is skipped, an unfinished one resumed)")
    ap.add_argument("--until", default=None, metavar="HH:MM|+MIN",
                    help="start a run only if it is expected to finish by then (the median wall time of the most "
                         "similar finished runs under --runs-root, +10%% and a minute): for a sitting that ends at a "
                         "known time; runs left out are listed, and a later grid command starts them (local launcher)")
    ap.add_argument("--status", type=Path, default=None, metavar="RUNS_ROOT",
                    help="say which runs submitted to Slurm under RUNS_ROOT are queued, running, finished or failed, "
                         "and exit (1 if one failed)")
    add_launcher_flags(ap)
    return ap.parse_args(argv)


def check_launcher(args: argparse.Namespace) -> SlurmResources | None:
    """The Slurm request (None: local), refusing the flags of the other launcher."""
    slurm = resources_from_args(args)
    if slurm is not None and args.jobs is not None:
        raise SeqRLError("--jobs is the local launcher's; with --launcher slurm, --array-parallelism N caps how "
                         "many runs train at once.")
    if slurm is not None and args.until is not None:
        raise SeqRLError("--until is for a local sitting; on Slurm each task has its --time limit, and a run "
                         "longer than that is requeued and resumes.")
    return slurm


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    args = parse_args(argv)
    return run_command(lambda: grid(args, extra), lambda stop: f"[grid] stopped by {stop.name} before any run "
                       "started; run the same command again.")


def grid(args: argparse.Namespace, extra: list[str]) -> int:
    """The grid ``args`` ask for: its status, or its runs made, run here or submitted."""
    if args.status is not None:
        return print_status(args.status)
    if not args.configs:
        raise SeqRLError("say which configs with --configs FILE [FILE ...] (or --status RUNS_ROOT for a "
                         "submitted grid's state).")
    slurm = check_launcher(args)
    until = None if args.until is None else parse_until(args.until, dt.datetime.now())
    jobs_flag = 1 if args.jobs is None else args.jobs
    check_flags([
        ("jobs", jobs_flag >= 1, ">= 1", jobs_flag),
        ("seeds", all(map(seed_ok, args.seeds)) and len(set(args.seeds)) == len(args.seeds),
         f"distinct seeds {SEED_RULE}", args.seeds),
    ])
    writable_folder(args.runs_root, "--runs-root")
    jobs = make_jobs(args.configs, args.backbones, args.seeds, extra)
    return launch(jobs, args.runs_root, jobs_flag, until, extra,
                  f"Tables and plots: python -m seqrl.results {args.runs_root}", slurm)


def launch(jobs: list[Job], runs_root: Path, parallel: int, until: dt.datetime | None, extra: list[str], then: str,
           slurm: SlurmResources | None = None, threads: int | None = None) -> int:
    """Run the grid here (``run_grid``) or, with ``slurm``, submit it as one job array and return."""
    if slurm is None:
        return run_grid(jobs, runs_root, parallel, until, extra, then, threads)
    return submit_grid(jobs, runs_root, slurm, run_job, then)


def prerequisites(job: Job, jobs: list[Job]) -> list[str]:
    """The prefixes of the jobs before ``job`` in ``jobs`` whose runs it reads, which it waits for: for a run that
    takes its critic from a folder of runs (``--critic-from``), the IQL runs of its task and seed. Only earlier
    jobs: the pool takes jobs in order, so those are started or done, and waiting for them cannot deadlock."""
    cfg = job.cfg
    if getattr(cfg, "critic_from", None) is None:
        return []
    mine = (cfg.env, cfg.dataset, cfg.seed)
    return [j.prefix for j in jobs[:jobs.index(job)] if j.cfg.agent == "iql" and (j.cfg.env, j.cfg.dataset, j.cfg.seed) == mine]


def prerequisite_state(result: tuple[Job, Path | None, int | None] | None) -> str:
    """What became of a run another run reads: finished (exit code 0, ``run_job``'s contract), failed, or not
    started (no run directory; no result at all counts so too)."""
    if result is None or result[1] is None:
        return "not started"
    return "finished" if result[2] == 0 else "failed"


def run_grid(jobs: list[Job], runs_root: Path, parallel: int, until: dt.datetime | None, extra: list[str],
             then: str, threads: int | None = None) -> int:
    """Run ``jobs`` into ``runs_root``, ``parallel`` at a time (finished runs skipped, unfinished ones resumed,
    runs not expected to finish by ``until`` left for later); write ``grid.yaml``; 0 unless a run failed.
    ``extra``: the flags every job was given (for the thread count); ``then``: what to do after, said at the end;
    ``threads``: each run's torch threads (default: the cores this process may use, shared by ``parallel``)."""
    asked = threads
    threads = threads or max(1, usable_cores() // parallel)
    root = runs_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    given = threads_flag(extra)
    each = (f"{given} thread(s) each (--threads after --)" if given else
            f"{threads} thread(s) each ({'--threads' if asked else f'{usable_cores()} cores shared'}; a run whose "
            "config sets threads: its own)")
    print(f"[grid] {len(jobs)} runs, {parallel} at a time, {each}, into {root}", flush=True)
    finished, lock, children = [0], threading.Lock(), Children()
    ended = {job.prefix: threading.Event() for job in jobs}  # set when a job's run_and_count returns, however
    outcome: dict[str, tuple[Job, Path | None, int | None]] = {}  # each job's result, once ended

    def run_and_count(job: Job) -> tuple[Job, Path | None, int | None]:
        try:
            needs = prerequisites(job, jobs)
            if needs and not all(ended[p].is_set() for p in needs):
                say(f"{job.prefix}* waits for {', '.join(p + '*' for p in needs)} (it reads their runs)")
            for p in needs:
                ended[p].wait()
            states = {p: prerequisite_state(outcome.get(p)) for p in needs}
            lacking = [f"{p}* ({state})" for p, state in states.items() if state != "finished"]
            if lacking:  # it would fail at once, reading a run that is not there
                why = ", ".join(lacking)
                say(f"not started: {job.prefix}* reads {why}; a later run of the grid starts it after them")
                result: tuple[Job, Path | None, int | None] = (job, None, None)
            else:
                result = run_job(job, root, threads, until, children)
            outcome[job.prefix] = result
            with lock:
                finished[0] += 1
                if not children.stopping:
                    say(f"progress: {finished[0]}/{len(jobs)} runs")
            return result
        finally:
            ended[job.prefix].set()

    pool = ThreadPoolExecutor(parallel)
    try:
        with stop_on_signals():
            results = list(pool.map(run_and_count, jobs))
    except KeyboardInterrupt as e:
        with signals_ignored():  # a second Ctrl-C does not leave children behind
            stopped = children.stop()
            pool.shutdown(wait=True, cancel_futures=True)
        return stopped_grid(stopped_by(e), stopped, then)
    pool.shutdown()
    failed = [p.name for _, p, rc in results if rc not in (0, None)]
    later = [job.prefix + "*" for job, p, _ in results if p is None]
    summary = {"runs": [str(p) for _, p, _ in results if p is not None], "failed": failed, "not_started": later}
    write_atomic(root / "grid.yaml", yaml.safe_dump(summary).encode())
    if failed:
        print(f"[grid] {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if later:
        print(f"[grid] {len(jobs) - len(later)} of {len(jobs)} runs finished; {len(later)} not started (--until "
              f"{until:%H:%M}): {', '.join(later)}. Run the same command later to do them.")
        return 0
    print(f"[grid] all {len(jobs)} runs finished. {then}")
    return 0


def stopped_grid(stop: Stopped, stopped: list[str], then: str) -> int:
    """Say which runs a signal stopped and how to go on; the grid's exit status (128 + the signal)."""
    runs = (f"{len(stopped)} run(s) stopped in training, each with its last checkpoint kept (see its train.log): "
            f"{', '.join(stopped)}" if stopped else "no run was training")
    print(f"[grid] stopped by {stop.name}: {runs}. Run the same command again to resume them (finished runs are "
          f"skipped, unfinished ones resumed from their last checkpoint). {then}", file=sys.stderr, flush=True)
    return stop.exit_status


if __name__ == "__main__":
    # run the module under its own name, so that what a Slurm task pickles (run_job, Job) is seqrl.grid's, which a
    # node can import, not __main__'s
    from seqrl.grid import main as grid_main

    sys.exit(grid_main())

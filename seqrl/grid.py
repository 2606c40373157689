"""Run a grid of trainings: configs (tasks) x backbones x seeds, sequentially or as parallel processes.

    python -m seqrl.grid --configs configs/cpu/hopper-medium.yaml configs/cpu/bc-hopper-medium.yaml \\
        --backbones transformer mingru --seeds 0 1 2 --jobs 2 [-- --steps 3000 ...extra train_offline.py flags]

A config whose agent is BC (``agent: bc``, configs/cpu/bc-*.yaml) makes one run per seed whatever
``--backbones`` says (BC has no backbone). Flags after ``--`` go to every run (e.g. a recipe option
for an A/B arm: ``-- --ema-decay 0.999``); they are part of the run's label, so the arms of an A/B
get their own directories and rows. Each run gets its own directory
``<runs-root>/<env>__<dataset>__<agent label>__<seed>__<unix time>`` (CleanRL's naming; the label
is ``seqrl.recipe.agent_label``: ``bc``, ``mingru``, ``mingru+ema0.999``, ...) and a ``train.log``. A run whose directory already holds a finished run
(``done.json``) is skipped, so a grid can be re-run after an interruption; an unfinished one
is resumed exactly (``--resume``). With ``--jobs N`` each process gets ``cores / N`` threads.
Then: ``python -m seqrl.results <runs-root>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from seqrl.config import TrainConfig, parse_train_args
from seqrl.errors import SEED_RULE, SeqRLError, check_flags, seed_ok
from seqrl.recipe import check_config



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
    def prefix(self) -> str:
        from seqrl.agents.trainer import run_prefix

        return run_prefix(self.cfg)


def make_jobs(configs: list[Path], backbones: list[str] | None, seeds: list[int], extra: list[str]) -> list[Job]:
    """config x backbone x seed (a BC config: x seed only), one job per distinct run prefix, in order.

    Every job's config is resolved and checked, so a bad config or flag fails now, not mid-grid."""
    jobs: dict[str, Job] = {}
    for c in configs:
        probe = ["--backbone", backbones[0]] if backbones else []  # a file may hold that backbone's options
        cfg = parse_train_args(["--config", str(c), *probe, *extra])
        if cfg.agent != "bc" and not backbones:
            raise SeqRLError(f"{c} trains the Decision model: say which backbones with --backbones NAME [NAME ...].")
        for b in [None] if cfg.agent == "bc" else backbones or []:
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
    return found[-1], (found[-1] / "done.json").is_file()


def threads_flag(args: list[str]) -> str | None:
    """The value of ``--threads`` in ``args`` (``--threads N`` or ``--threads=N``), if given."""
    for i, a in enumerate(args):
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
        if a == "--threads" and i + 1 < len(args):
            return args[i + 1]
    return None


def train_command(args: list[str], threads: int) -> list[str]:
    """The training program (``seqrl.cli.train``, what train_offline.py runs) with ``args``, by module so an
    installed package needs no checkout; the grid's thread count unless the user's flags (after ``--``) set one."""
    given = threads_flag(args) is not None
    return [sys.executable, "-m", "seqrl.cli.train", *args, *([] if given else ["--threads", str(threads)])]


def say(message: str) -> None:
    """One progress line, written whole: jobs run in threads, and print's separate newline could interleave."""
    sys.stdout.write(f"[grid] {message}\n")
    sys.stdout.flush()


def run_job(job: Job, root: Path, threads: int) -> tuple[Job, Path, int]:
    path, finished = existing(root, job)
    if finished:
        say(f"skip {path.name} (finished)")
        return job, path, 0
    if path is not None and (path / "last.pt").is_file():
        args = ["--resume", str(path), *job.extra]
        say(f"resume {path.name}")
    else:
        earlier, path = path, root / f"{job.prefix}{int(time.time() * 1000)}"  # = run_name
        args = [*job.args, "--run-dir", str(path)]
        say(f"start {path.name}" + (f" ({earlier.name} stopped before its first checkpoint; left as it was)"
                                    if earlier is not None else ""))
    path.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(path / "train.log", "a") as log:
        rc = subprocess.call(train_command(args, threads), stdout=log, stderr=subprocess.STDOUT)
    minutes = (time.monotonic() - start) / 60
    say(f"{'done' if rc == 0 else f'FAILED (exit {rc}, see train.log)'} {path.name} ({minutes:.1f} min)")
    return job, path, rc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", type=Path, required=True, help="one YAML per task (configs/...)")
    ap.add_argument("--backbones", nargs="+", default=None,
                    help="registry names (needed by Decision-model configs; BC configs make one run per seed)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed (default: 0 1 2)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="parallel training processes, each with cores / jobs threads unless --threads is given after --")
    ap.add_argument("--runs-root", type=Path, default=Path("runs"),
                    help="folder of the run directories (a finished run there is skipped, an unfinished one resumed)")
    args = ap.parse_args(argv)
    try:
        check_flags([
            ("jobs", args.jobs >= 1, ">= 1", args.jobs),
            ("seeds", all(map(seed_ok, args.seeds)) and len(set(args.seeds)) == len(args.seeds),
             f"distinct seeds {SEED_RULE}", args.seeds),
        ])
        jobs = make_jobs(args.configs, args.backbones, args.seeds, extra)
    except SeqRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    root = args.runs_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    given = threads_flag(extra)
    each = f"{given} thread(s) each (--threads after --)" if given else f"{threads} thread(s) each"
    print(f"[grid] {len(jobs)} runs, {args.jobs} at a time, {each}, into {root}", flush=True)
    finished, lock = [0], threading.Lock()

    def run_and_count(job: Job) -> tuple[Job, Path, int]:
        result = run_job(job, root, threads)
        with lock:
            finished[0] += 1
            say(f"progress: {finished[0]}/{len(jobs)} runs")
        return result

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_and_count, jobs))
    failed = [p.name for _, p, rc in results if rc != 0]
    summary = {"runs": [str(p) for _, p, _ in results], "failed": failed}
    (root / "grid.yaml").write_text(yaml.safe_dump(summary))
    if failed:
        print(f"[grid] {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"[grid] all {len(jobs)} runs finished. Tables and plots: python -m seqrl.results {args.runs_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

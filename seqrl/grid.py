"""Run a grid of trainings: configs (tasks) x backbones x seeds, sequentially or as parallel processes.

    python -m seqrl.grid --configs configs/cpu/hopper-medium.yaml --backbones transformer mingru \\
        --seeds 0 1 2 --jobs 2 [-- --steps 3000 ...extra train_offline.py flags]

Each run gets its own directory ``<runs-root>/<env>__<dataset>__<backbone>__<seed>__<unix time>``
(CleanRL's naming) and a ``train.log``. A run whose directory already holds a finished run
(``done.json``) is skipped, so a grid can be re-run after an interruption; an unfinished one
is resumed exactly (``--resume``). With ``--jobs N`` each process gets ``cores / N`` threads.
Then: ``python -m seqrl.results <runs-root>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from seqrl.config import load_yaml_config

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Job:
    config: Path
    backbone: str
    seed: int
    extra: list[str]

    def prefix(self) -> str:
        from seqrl.agents.trainer import run_prefix

        cfg = load_yaml_config(self.config)
        gate = next((self.extra[i + 1] for i, a in enumerate(self.extra[:-1]) if a == "--gate"), cfg.gate)
        return run_prefix(dataclasses.replace(cfg, backbone=self.backbone, seed=self.seed, gate=gate))


def existing(root: Path, job: Job) -> tuple[Path | None, bool]:
    """The newest run directory of this job, and whether it finished."""
    found = sorted(root.glob(job.prefix() + "*"))
    if not found:
        return None, False
    return found[-1], (found[-1] / "done.json").is_file()


def run_job(job: Job, root: Path, threads: int) -> tuple[Job, Path, int]:
    path, finished = existing(root, job)
    if finished:
        print(f"[grid] skip {path.name} (finished)", flush=True)
        return job, path, 0
    if path is not None and (path / "last.pt").is_file():
        args = ["--resume", str(path), *job.extra]
        print(f"[grid] resume {path.name}", flush=True)
    else:
        path = root / f"{job.prefix()}{int(time.time() * 1000)}"  # = run_name
        args = ["--config", str(job.config), "--backbone", job.backbone, "--seed", str(job.seed),
                "--run-dir", str(path), *job.extra]
        print(f"[grid] start {path.name}", flush=True)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "train.log", "a") as log:
        rc = subprocess.call([sys.executable, str(REPO / "train_offline.py"), *args, "--threads", str(threads)],
                             stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    print(f"[grid] {'done' if rc == 0 else f'FAILED (exit {rc}, see train.log)'} {path.name}", flush=True)
    return job, path, rc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", type=Path, required=True, help="one YAML per task (configs/...)")
    ap.add_argument("--backbones", nargs="+", required=True, help="registry names")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="parallel training processes")
    ap.add_argument("--runs-root", type=Path, default=Path("runs"))
    args = ap.parse_args(argv)
    for c in args.configs:
        load_yaml_config(c)  # fail now on a bad config, not in the middle of the grid
    jobs = [Job(c.resolve(), b, s, extra) for c in args.configs for b in args.backbones for s in args.seeds]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    root = args.runs_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    print(f"[grid] {len(jobs)} runs, {args.jobs} at a time, {threads} thread(s) each, into {root}", flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run_job(j, root, threads), jobs))
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

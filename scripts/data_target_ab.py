#!/usr/bin/env python
"""Issue 12's evaluation-only A/B of the target rule: DT's constant high target (the protocol's) against the
data's best episode return (the rule "R = min(DT's constant, the data's best return)", which on every local
dataset is the data's best: 2,951 hopper-medium, 2,108 hopper-medium-replay, 4,583 halfcheetah-medium, 4,353
halfcheetah-medium-replay, 3,778 walker2d-medium, 2,927 walker2d-medium-replay).

    python scripts/data_target_ab.py records/study --evaluate     # evaluate runs that have their weights
    python scripts/data_target_ab.py records/study                # the paired table only

Each finished Decision-model run is its own pair: arm A is its last evaluation at the protocol's highest
target (evals.jsonl), arm B its last checkpoint evaluated at the data's best return, on the same reset seeds
(0-9) and rollout modes (``evaluate.py RUN --targets <best> --json RUN/data_best_eval.json``). ``--evaluate``
does arm B for every finished run that still has ``last.pt`` and no ``data_best_eval.json`` (one thread each:
it runs beside a grid). A run trained on another machine keeps no weights (git-ignored), so only the runs of
the current sitting can be added: the table says how many pairs each row has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

EVAL_FILE = "data_best_eval.json"


def finished_decision_runs(root: Path) -> list[tuple[Path, dict, dict]]:
    """(run dir, done.json, config) of every finished run under ``root`` whose agent takes a target."""
    runs = []
    for done_file in sorted(root.glob("*/done.json")):
        done = json.loads(done_file.read_text())
        if done.get("targets"):
            runs.append((done_file.parent, done, yaml.safe_load((done_file.parent / "config.yaml").read_text())))
    return runs


def evaluate(run: Path, done: dict, cfg: dict) -> None:
    best = done["data"]["return_max"]
    cmd = [sys.executable, "-m", "seqrl.cli.evaluate", str(run), "--episodes", str(cfg["eval_episodes"]),
           "--targets", f"{best:.1f}", "--rollout", *cfg["rollout"], "--json", str(run / EVAL_FILE), "--device", "cpu"]
    print(f"[ab] {run.name}: evaluating at the data's best return {best:.0f}", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)


def pairs(runs: list[tuple[Path, dict, dict]]) -> dict[tuple[str, str, str], list[tuple[int, float, float]]]:
    """(dataset, agent, rollout) -> [(seed, score at the protocol's high target, score at the data's best)]."""
    out: dict[tuple[str, str, str], list[tuple[int, float, float]]] = defaultdict(list)
    for run, done, cfg in runs:
        if not (run / EVAL_FILE).is_file():
            continue
        high = max(done["targets"])
        b = {r["rollout"]: r["normalized_mean"] for r in json.loads((run / EVAL_FILE).read_text())["results"]}
        for r in done["last"]["results"]:
            if r["target"] == high and r["rollout"] in b:
                key = (f"{cfg['env']}-{cfg['dataset']}", done["agent"], r["rollout"])
                out[key].append((int(cfg["seed"]), r["normalized_mean"], b[r["rollout"]]))
    return out


def table(by_key: dict[tuple[str, str, str], list[tuple[int, float, float]]]) -> str:
    lines = ["| dataset | agent | rollout | pairs | protocol's R (last) | data's best R | B − A | seeds: A → B |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for (dataset, agent, rollout), ps in sorted(by_key.items()):
        ps.sort()
        a, b = np.array([p[1] for p in ps]), np.array([p[2] for p in ps])
        per_seed = ", ".join(f"{s}: {x:.1f} → {y:.1f}" for s, x, y in ps)
        lines.append(f"| {dataset} | {agent} | {rollout} | {len(ps)} | {a.mean():.1f} | {b.mean():.1f} | "
                     f"{(b - a).mean():+.1f} | {per_seed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, nargs="?", default=Path("records/study"), help="folder of run directories")
    ap.add_argument("--evaluate", action="store_true",
                    help=f"first evaluate, at the data's best return, each finished run with last.pt and no {EVAL_FILE}")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: {args.root} is not a folder of run directories", file=sys.stderr)
        return 2
    runs = finished_decision_runs(args.root)
    if args.evaluate:
        for run, done, cfg in runs:
            if (run / "last.pt").is_file() and not (run / EVAL_FILE).is_file():
                evaluate(run, done, cfg)
    print(table(pairs(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

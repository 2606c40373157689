#!/usr/bin/env python
"""How often episodes end upside down: in the runs' evaluations (every evaluation, not only the last) and in a
dataset's own episodes. The figures of the README's halfcheetah-medium note:

    python scripts/flip_rates.py records/study --task halfcheetah__medium --dataset local/halfcheetah/medium-v0

Runs: per (agent, rollout), at the highest target the runs were evaluated at (BC: its one 'state' row), the share
of episodes that ended upside down (``upside_down`` in evals.jsonl), the mean normalized score over all those
episodes and over the ones that did not flip. Data (needs MINARI_DATASETS_PATH): an episode counts as upside down
when its last observation's root pitch (observation 1 of Hopper, HalfCheetah and Walker2d: the root's rotation
about y) has a negative cosine, the test ``seqrl.envs.episodes.upside_down`` makes on the simulator.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from seqrl.results import load_runs


def run_rates(root: Path, task: str) -> dict[tuple[str, str], list[tuple[float, bool]]]:
    """(agent, rollout) -> [(normalized score, upside down)] over every evaluation episode of the finished runs
    of ``task`` (``env__dataset``) at their highest target. Runs are read as ``seqrl.results`` reads them."""
    episodes: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for run in load_runs(sorted(done.parent for done in root.glob(f"{task}__*/done.json"))):
        for record in run.evals:
            top = max((r["target"] for r in record["results"] if r["target"] is not None), default=None)
            for r in record["results"]:
                if r["target"] == top and "upside_down" in r:
                    episodes[(run.agent, r["rollout"])] += zip(r["normalized"], r["upside_down"])
    return episodes


def data_rate(dataset_id: str) -> tuple[int, int, float, float]:
    """(episodes, upside down at their end, mean return of those, mean return of the rest) of a Minari dataset."""
    import minari

    flipped, returns = [], []
    for ep in minari.load_dataset(dataset_id).iterate_episodes():
        flipped.append(np.cos(ep.observations[-1, 1]) < 0)
        returns.append(float(np.sum(ep.rewards)))
    f, r = np.array(flipped), np.array(returns)
    return len(f), int(f.sum()), float(r[f].mean()) if f.any() else float("nan"), float(r[~f].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="folder of run directories (e.g. records/study)")
    ap.add_argument("--task", required=True, help="env__dataset prefix of the runs, e.g. halfcheetah__medium")
    ap.add_argument("--dataset", help="a Minari dataset id, for the data's own rate")
    args = ap.parse_args()
    rows = run_rates(args.root, args.task)
    if not rows:
        raise SystemExit(f"no finished run of {args.task} with upside_down recorded under {args.root}")
    print("| agent | rollout | upside down | mean, all | mean, not upside down |\n|---|---|---:|---:|---:|")
    for (agent, rollout), eps in sorted(rows.items()):
        score = np.array([s for s, _ in eps])
        flip = np.array([u for _, u in eps])
        print(f"| {agent} | {rollout} | {flip.sum()}/{len(flip)} ({flip.mean():.1%}) | {score.mean():.2f} | "
              f"{score[~flip].mean():.2f} |")
    if args.dataset:
        n, f, r_flip, r_rest = data_rate(args.dataset)
        print(f"\ndata {args.dataset}: {f}/{n} episodes end upside down ({f / n:.1%}); mean return {r_flip:,.0f} "
              f"for those, {r_rest:,.0f} for the rest")


if __name__ == "__main__":
    main()

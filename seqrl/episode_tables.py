"""Two diagnostic tables over runs' episodes, for ``python -m seqrl.results --flips`` and ``--paired NAME``.

- ``flip_table``: per (env, dataset, agent, rollout), how many episodes ended upside down over every evaluation
  of the runs (not only the last) at each evaluation's highest target (BC: its one ``state`` result), and the
  mean normalized score over all those episodes and over the ones that did not flip.
- ``paired_table``: each run is its own pair: arm A its last evaluation, arm B its re-evaluation ``NAME``
  (``evaluate.py RUN --targets ... --json RUN/NAME_eval.json``, e.g. at the data's best return), on the same
  reset seeds; targets are paired by rank (A's highest with B's highest, and so on), rollout by rollout.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import numpy as np


class Run(Protocol):
    """What these tables read of a run (``seqrl.results.Run``)."""

    env: str
    dataset: str
    agent: str
    seed: int
    evals: list[dict]  # evals.jsonl records
    evaluations: dict[str, dict]  # evaluate.py's <name>_eval.json, by name

    @property
    def task(self) -> str: ...


def _target(t: float | None) -> str:
    return "-" if t is None else f"{t:g}"


def flip_episodes(runs: list[Run]) -> dict[tuple[str, str, str, str], list[tuple[float, bool]]]:
    """(env, dataset, agent, rollout) -> [(normalized score, ended upside down)] over every evaluation's episodes at
    its highest target, of the results that recorded ``upside_down``."""
    episodes: dict[tuple[str, str, str, str], list[tuple[float, bool]]] = defaultdict(list)
    for run in runs:
        for record in run.evals:
            top = max((r["target"] for r in record["results"] if r["target"] is not None), default=None)
            for r in record["results"]:
                if r["target"] == top and "upside_down" in r:
                    episodes[(run.env, run.dataset, run.agent, r["rollout"])] += zip(r["normalized"], r["upside_down"])
    return episodes


def flip_table(runs: list[Run]) -> str:
    """``flip_episodes`` as a markdown table, one row per (env, dataset, agent, rollout)."""
    lines = ["| env | dataset | agent | rollout | upside down | mean, all | mean, not upside down |",
             "|---|---|---|---|---:|---:|---:|"]
    for (env, dataset, agent, rollout), eps in sorted(flip_episodes(runs).items()):
        score = np.array([s for s, _ in eps], dtype=float)
        flip = np.array([u for _, u in eps], dtype=bool)
        upright = f"{score[~flip].mean():.2f}" if (~flip).any() else "-"
        lines.append(f"| {env} | {dataset} | {agent} | {rollout} | {flip.sum()}/{len(flip)} ({flip.mean():.1%}) | "
                     f"{score.mean():.2f} | {upright} |")
    return "\n".join(lines)


def _by_target(results: list[dict]) -> list[dict[str, dict]]:
    """Results grouped by target, highest first: [{rollout: result}] (results without a target left out)."""
    targets = sorted({r["target"] for r in results if r["target"] is not None}, reverse=True)
    return [{r["rollout"]: r for r in results if r["target"] == t} for t in targets]


Pair = tuple[int, float, float, float, float]  # seed, A's target, A's score, B's target, B's score


def pairs(runs: list[Run], name: str) -> dict[tuple[str, str, str, int], list[Pair]]:
    """(env-dataset, agent, rollout, rank of the target) -> the runs' pairs: the last evaluation against ``name``."""
    out: dict[tuple[str, str, str, int], list[Pair]] = defaultdict(list)
    for run in runs:
        if name not in run.evaluations:
            continue
        a_ranks, b_ranks = _by_target(run.evals[-1]["results"]), _by_target(run.evaluations[name]["results"])
        for rank, (a, b) in enumerate(zip(a_ranks, b_ranks)):
            for rollout in sorted(set(a) & set(b)):
                ra, rb = a[rollout], b[rollout]
                out[(run.task, run.agent, rollout, rank)].append(
                    (run.seed, ra["target"], ra["normalized_mean"], rb["target"], rb["normalized_mean"]))
    return out


def paired_table(runs: list[Run], name: str) -> str:
    """``pairs`` as a markdown table: per row the targets, the number of pairs, both arms' means over them, the
    mean difference, and each seed's pair."""
    lines = [f"| dataset | agent | rollout | R: A → B | pairs | A: last evaluation | B: {name} | B − A | seeds: A → B |",
             "|---|---|---|---|---:|---:|---:|---:|---|"]
    for (task, agent, rollout, _), ps in sorted(pairs(runs, name).items()):
        ps.sort()
        a, b = np.array([p[2] for p in ps]), np.array([p[4] for p in ps])
        targets = " → ".join("/".join(_target(t) for t in sorted({p[i] for p in ps})) for i in (1, 3))
        per_seed = ", ".join(f"{p[0]}: {p[2]:.1f} → {p[4]:.1f}" for p in ps)
        lines.append(f"| {task} | {agent} | {rollout} | {targets} | {len(ps)} | {a.mean():.1f} | {b.mean():.1f} | "
                     f"{(b - a).mean():+.1f} | {per_seed} |")
    return "\n".join(lines)

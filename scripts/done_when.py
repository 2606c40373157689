#!/usr/bin/env python
"""Issue 12's done-when, checked against a results table (``python -m seqrl.results records/study --finished
--out results/study`` writes it):

    python scripts/done_when.py results/study/results.csv

- hopper-medium: transformer and mingru >= 73 and best - last <= 8; every backbone >= the BC row;
- each other dataset: transformer and mingru >= the BC row and >= the data's mean.

Each Decision-model cell is the last evaluation at the dataset's highest target, mean over seeds (as the
README's headline), in every rollout mode it was evaluated in; a cell with fewer than 3 seeds is marked
"seeds n/3" (not yet decided). The done-when is about the protocol as it stands: a row whose agent is not
what ``--configs DIR`` (default the repo's configs/cpu) trains for its backbone on that task (an A/B's superseded arm
kept in the same folder, e.g. ``transformer+no-time`` once the protocol's Transformer is ``+rope``) gets a
"not the protocol" line and no verdict. Prints one line per row and exits 0 whatever the verdicts: it reports.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from seqrl.training.recipe import agent_label, label_backbone
from seqrl.results import headline_rows

NAMED = ("transformer", "mingru")  # the backbones the done-when names on every dataset
HOPPER_MEDIUM = ("hopper", "medium")
MIN_HOPPER, MAX_GAP, SEEDS = 73.0, 8.0, 3


def headline_cells(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(env, dataset) -> the rows the README's headline shows (seqrl.results.headline_rows), from the CSV."""
    for r in rows:  # the CSV's strings as aggregate's values
        r["target"] = float(r["target"]) if r["target"] else None
    cells: dict[tuple[str, str], list[dict]] = {}
    for (env, dataset, _, _), r in headline_rows(rows)[1].items():
        cells.setdefault((env, dataset), []).append(r)
    return cells


def protocol_label(configs: Path, env: str, dataset: str, backbone: str) -> str | None:
    """The agent label the protocol's task config ``configs/<env>-<dataset>.yaml`` trains for ``backbone``
    (None when there is no such file: every row then counts)."""
    from seqrl.training.config import parse_train_args

    path = configs / f"{env}-{dataset}.yaml"
    return agent_label(parse_train_args(["--config", str(path), "--backbone", backbone]).to_dict()) if path.is_file() else None


PROTOCOL = Path(__file__).resolve().parent.parent / "configs" / "cpu"


def check(cells: dict[tuple[str, str], list[dict]], configs: Path = PROTOCOL) -> list[str]:
    lines = []
    protocols: dict[tuple[str, str, str], str | None] = {}  # each (task, backbone)'s config parsed once per check
    for (env, dataset), rows in sorted(cells.items()):
        bc = next((r for r in rows if r["agent"] == "bc"), None)
        data = float(rows[0]["data"]) if rows[0]["data"] else None
        for r in sorted(rows, key=lambda r: (r["agent"], r["rollout"])):
            if r["agent"] == "bc":
                continue
            named = label_backbone(r["agent"]) in NAMED
            if (env, dataset) != HOPPER_MEDIUM and not named:
                continue
            key = (env, dataset, label_backbone(r["agent"]))
            if key not in protocols:
                protocols[key] = protocol_label(configs, *key)
            protocol = protocols[key]
            if protocol is not None and r["agent"] != protocol:
                lines.append(f"{env + '-' + dataset:26} {r['agent'] + ' ' + r['rollout']:32} not the protocol "
                             f"({protocol}): no verdict")
                continue
            last, gap, n = float(r["last_mean"]), float(r["best_minus_last"]), int(r["seeds"])
            bars = []  # (what, passed)
            if bc:
                bars.append((f">= BC {float(bc['last_mean']):.1f}", last >= float(bc["last_mean"])))
            if (env, dataset) == HOPPER_MEDIUM and named:
                bars += [(f">= {MIN_HOPPER:g}", last >= MIN_HOPPER), (f"best - last {gap:.1f} <= {MAX_GAP:g}", gap <= MAX_GAP)]
            elif (env, dataset) != HOPPER_MEDIUM and data is not None:
                bars.append((f">= data {data:.1f}", last >= data))
            verdict = "ok" if all(p for _, p in bars) else "SHORT"
            seeds = "" if n >= SEEDS else f" (seeds {n}/{SEEDS}: not decided)"
            lines.append(f"{env + '-' + dataset:26} {r['agent'] + ' ' + r['rollout']:32} R={r['target']:g} last "
                         f"{last:5.1f}: {verdict:5} " + ", ".join(("" if p else "not ") + w for w, p in bars) + seeds)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", type=Path, help="results.csv written by python -m seqrl.results")
    ap.add_argument("--configs", type=Path, default=PROTOCOL,
                    help="the protocol's task configs (<env>-<dataset>.yaml): rows of other agents get no verdict")
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv} is not a file; make it with python -m seqrl.results RUNS --out DIR", file=sys.stderr)
        return 2
    rows = list(csv.DictReader(open(args.csv)))
    print("\n".join(check(headline_cells(rows), args.configs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

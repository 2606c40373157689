#!/usr/bin/env python
"""One row per run directory: throughput, wall time, last and best evaluation during training.
(Aggregation over seeds, CSV and plots: ``python -m seqrl.results``.)

    python scripts/runs_table.py runs/* [--eval-json eval.json]

Per run: agent (seqrl.training.recipe.agent_label), parameters, median training updates/s (TensorBoard
``charts/updates_per_s``), wall time of training, and per target return the
last and best evaluation during training (normalized, mean ± std over episodes).
With ``--eval-json NAME``, also the results of ``evaluate.py --json RUN/NAME``
(one column per rollout mode and target).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path



def fmt(results: dict, target: float, rollout: str) -> str:
    for r in results:
        if r["target"] == target and r["rollout"] == rollout:
            return f"{r['normalized_mean']:.1f} ± {r['normalized_std']:.1f}"
    return "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories written by train_offline.py")
    ap.add_argument("--eval-json", default=None, help="file name, inside each run dir, of evaluate.py --json output")
    args = ap.parse_args()
    import yaml
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seqrl.training.recipe import agent_label
    from seqrl.results import done_record, fmt_target, size_and_speed
    from seqrl.training.rundir import EVAL_KEYS, read_jsonl

    rows = []
    for run in args.runs:
        evals_path = run / "evals.jsonl"
        if not evals_path.is_file():
            continue
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        evals = read_jsonl(evals_path, EVAL_KEYS)
        done = done_record(run)
        params, ups = size_and_speed(run, done)
        if "wall_s" in done:
            wall = done["wall_s"]
        else:  # unfinished: the span of its logged losses (a committed record keeps no TensorBoard events)
            acc = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
            loss = acc.Scalars("losses/action_mse") if "losses/action_mse" in acc.Tags()["scalars"] else []
            wall = (loss[-1].wall_time - loss[0].wall_time) if len(loss) > 1 else float("nan")
        row = {
            "agent": agent_label(cfg),
            "params": f"{params:,}" if params else "-",
            "updates/s": f"{ups:.2f}" if ups else "-",
            "updates": str(evals[-1]["step"]),
            "train wall (min)": f"{wall / 60:.0f}" if wall == wall else "-",
        }
        rollouts = [r["rollout"] for r in evals[-1]["results"]]
        rollout = next((ro for ro in cfg.get("rollout", ["window"]) if ro in rollouts), rollouts[0])  # BC: state
        targets = [r["target"] for r in evals[-1]["results"] if r["rollout"] == rollout]
        for t in targets:
            best = max(evals, key=lambda e: next(r["normalized_mean"] for r in e["results"] if r["target"] == t and r["rollout"] == rollout))
            row[f"last R={fmt_target(t)}"] = fmt(evals[-1]["results"], t, rollout)
            row[f"best R={fmt_target(t)}"] = fmt(best["results"], t, rollout) + f" (@{best['step']})"
        if args.eval_json and (run / args.eval_json).is_file():
            final = json.loads((run / args.eval_json).read_text())["results"]
            for r in final:
                row[f"{r['rollout']} R={fmt_target(r['target'])}"] = fmt(final, r["target"], r["rollout"])
        rows.append(row)
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        print("| " + " | ".join(row.get(c, "-") for c in cols) + " |")


if __name__ == "__main__":
    main()

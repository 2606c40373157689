"""Aggregate run directories into tables and plots.

    python -m seqrl.results runs/* --out results/

Writes ``results.md`` and ``results.csv`` (backbone x dataset -> normalized score, mean ± std
over seeds, for the last and the best evaluation, per target return and rollout mode),
``curves.png`` (normalized score vs updates, mean with a ± std band over seeds) and
``bars.png`` (last evaluation per backbone). Runs are grouped by (env, dataset, backbone,
gate); a run counts once its ``evals.jsonl`` has at least one evaluation, but a run whose last
evaluation is earlier than the rest of its group's (still training, or killed) is left out of
the table (said on stderr, counted in the CSV's ``left_out``) so that "last" compares runs
at the same point of training; the curves keep it. A run directory's
``final_eval.json`` (``evaluate.py RUN --json RUN/final_eval.json``, e.g. with both rollout
modes) counts as its last evaluation. Columns ``params`` and ``updates/s`` (median of
``charts/updates_per_s``) describe the model and its training throughput.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml


@dataclass
class Run:
    path: Path
    env: str
    dataset: str
    backbone: str
    seed: int
    evals: list[dict]  # evals.jsonl records: {"step", "results": [{"target", "rollout", "normalized_mean", ...}]}
    params: int | None = None
    updates_per_s: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.env, self.dataset, self.backbone

    def curve(self, target: float, rollout: str) -> dict[int, float]:
        return {e["step"]: r["normalized_mean"] for e in self.evals for r in e["results"]
                if r["target"] == target and r["rollout"] == rollout}


def load_runs(paths: list[Path]) -> list[Run]:
    runs = []
    for p in paths:
        evals_file, cfg_file = p / "evals.jsonl", p / "config.yaml"
        if not (evals_file.is_file() and cfg_file.is_file()):
            continue
        evals = [json.loads(line) for line in evals_file.read_text().splitlines() if line.strip()]
        if not evals:
            continue
        cfg = yaml.safe_load(cfg_file.read_text())
        gate = cfg.get("gate", "default")
        backbone = cfg["backbone"] + ("" if gate == "default" else f"+{gate}")
        dataset = cfg["dataset"]  # as the user gave it (done.json records what it resolved to)
        if (p / "final_eval.json").is_file():  # evaluate.py's results replace/extend the last evaluation
            final = json.loads((p / "final_eval.json").read_text())["results"]
            keys = {(r["target"], r["rollout"]) for r in final}
            last = [r for r in evals[-1]["results"] if (r["target"], r["rollout"]) not in keys]
            evals[-1] = {**evals[-1], "results": last + final}
        runs.append(Run(p, cfg.get("env") or "", dataset, backbone, int(cfg.get("seed", 0)), evals,
                        param_count(p), median_updates_per_s(p)))
    return runs


def param_count(run: Path) -> int | None:
    import torch

    ckpt = run / "last.pt"
    if not ckpt.is_file():
        return None
    return sum(v.numel() for v in torch.load(ckpt, map_location="cpu", weights_only=False)["model"].values())


def median_updates_per_s(run: Path) -> float | None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
    if "charts/updates_per_s" not in acc.Tags()["scalars"]:
        return None
    return float(np.median([e.value for e in acc.Scalars("charts/updates_per_s")]))


def _pm(mean: float, std: float, n: int) -> str:
    """mean ± std over seeds; the mean alone for one seed (a std over one value says nothing)."""
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def aggregate(runs: list[Run]) -> list[dict]:
    """One row per (env, dataset, backbone, target, rollout): last and best over seeds."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        groups[r.key].append(r)
    rows = []
    for (env, dataset, backbone), group in sorted(groups.items()):
        combos = sorted({(res["target"], res["rollout"]) for r in group for res in r.evals[-1]["results"]})
        for target, rollout in combos:
            runs_c = [(r, r.curve(target, rollout)) for r in group]
            runs_c = [(r, c) for r, c in runs_c if c]
            # a run whose last evaluation is earlier than the others' (still training, or killed) would mix
            # "last" scores from different points of training: it is left out of the row, and said so
            final_step = max(max(c) for _, c in runs_c)
            behind = [(r, max(c)) for r, c in runs_c if max(c) < final_step]
            for r, step in behind:
                print(f"[seqrl] results: {r.path.name} left out of {backbone} R={target:g} {rollout}: its last "
                      f"evaluation is at update {step}, the others' at {final_step}", file=sys.stderr)
            kept = [(r, c) for r, c in runs_c if max(c) == final_step]
            curves = [c for _, c in kept]
            last = [c[final_step] for c in curves]
            ep_std = [res["normalized_std"] for r, _ in kept for res in r.evals[-1]["results"]
                      if (res["target"], res["rollout"]) == (target, rollout) and "normalized_std" in res]
            best = [max(c.values()) for c in curves]
            params = [r.params for r in group if r.params is not None]
            ups = [r.updates_per_s for r in group if r.updates_per_s is not None]
            rows.append({
                "env": env, "dataset": dataset, "backbone": backbone, "target": target, "rollout": rollout,
                "seeds": len(curves), "updates": final_step, "left_out": len(behind),
                "params": params[0] if params else "", "updates_per_s": round(float(np.mean(ups)), 2) if ups else "",
                "last_mean": float(np.mean(last)), "last_std": float(np.std(last)),
                "last_episode_std": round(float(np.mean(ep_std)), 2) if ep_std else "",
                "best_mean": float(np.mean(best)), "best_std": float(np.std(best)),
            })
    return rows


def write_tables(rows: list[dict], out: Path) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = ["| env | dataset | backbone | params | updates/s | target | rollout | seeds | updates | last | "
             "last: std over episodes | best |", "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] != "" else "-"
        lines.append(f"| {r['env']} | {r['dataset']} | {r['backbone']} | {params} | {r['updates_per_s'] or '-'} | "
                     f"{r['target']:g} | {r['rollout']} | {r['seeds']} | {r['updates']} | "
                     f"{_pm(r['last_mean'], r['last_std'], r['seeds'])} | {r['last_episode_std'] or '-'} | "
                     f"{_pm(r['best_mean'], r['best_std'], r['seeds'])} |")
    (out / "results.md").write_text("Normalized score, mean ± std over seeds (each seed: mean over its evaluation "
                                    "episodes); last = final evaluation, best = best evaluation of the run; the std "
                                    "over a run's evaluation episodes, averaged over seeds, is shown beside it.\n\n"
                                    + "\n".join(lines) + "\n")


def wide_table(rows: list[dict]) -> str:
    """One row per (env, dataset, backbone), one column per (rollout, target): the last evaluation,
    mean ± std over seeds (over evaluation episodes when there is one seed)."""
    cols = sorted({(r["rollout"], r["target"]) for r in rows}, key=lambda c: (-c[1], c[0]))
    keys = sorted({(r["env"], r["dataset"], r["backbone"]) for r in rows})
    head = ["env", "dataset", "backbone", "params", "updates/s", "seeds"] + [f"{ro} R={t:g}" for ro, t in cols]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---:|" + "---:|" * len(cols)]
    for key in keys:
        sel = {(r["rollout"], r["target"]): r for r in rows if (r["env"], r["dataset"], r["backbone"]) == key}
        any_r = next(iter(sel.values()))
        cells = []
        for c in cols:
            r = sel.get(c)
            std = None if r is None else (r["last_std"] if r["seeds"] > 1 else r["last_episode_std"])
            cells.append("-" if r is None else f"{r['last_mean']:.1f} ± {std:.1f}" if std != "" else f"{r['last_mean']:.1f}")
        params = f"{any_r['params']:,}" if any_r["params"] != "" else "-"
        lines.append("| " + " | ".join([*key, params, str(any_r["updates_per_s"] or "-"), str(any_r["seeds"]), *cells]) + " |")
    return "\n".join(lines)


def plot(runs: list[Run], rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["env"], r["dataset"], r["target"], r["rollout"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (env, dataset, target, rollout) in zip(axes[0], panels):
        for backbone in sorted({r.backbone for r in runs if (r.env, r.dataset) == (env, dataset)}):
            curves = [r.curve(target, rollout) for r in runs if r.key == (env, dataset, backbone)]
            curves = [c for c in curves if c]
            if not curves:
                continue
            steps = sorted(set.intersection(*(set(c) for c in curves)))
            vals = np.array([[c[s] for s in steps] for c in curves])
            m, sd = vals.mean(0), vals.std(0)
            ax.plot(steps, m, marker="o", ms=3, label=f"{backbone} (n={len(curves)})")
            ax.fill_between(steps, m - sd, m + sd, alpha=0.2)
        ax.set(title=f"{env} {dataset}\nR={target:g}, {rollout}", xlabel="updates", ylabel="normalized score")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (env, dataset, target, rollout) in zip(axes[0], panels):
        sel = [r for r in rows if (r["env"], r["dataset"], r["target"], r["rollout"]) == (env, dataset, target, rollout)]
        x = np.arange(len(sel))
        ax.bar(x, [r["last_mean"] for r in sel], yerr=[r["last_std"] for r in sel], capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, [f"{r['backbone']}\n(n={r['seeds']})" for r in sel], fontsize=8)
        ax.set(title=f"{env} {dataset}: last evaluation\nR={target:g}, {rollout}", ylabel="normalized score")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "bars.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (or folders holding them)")
    ap.add_argument("--out", type=Path, default=Path("results"), help="folder for results.md/.csv, curves.png, bars.png")
    ap.add_argument("--no-plots", action="store_true", help="tables only")
    ap.add_argument("--wide", action="store_true",
                    help="also print one row per backbone, one column per rollout and target (results_wide.md)")
    args = ap.parse_args(argv)
    paths = []
    for p in args.runs:
        paths += [p] if (p / "config.yaml").is_file() else sorted(q for q in p.iterdir() if q.is_dir()) if p.is_dir() else []
    runs = load_runs(paths)
    if not runs:
        print(f"error: no evaluated runs among {', '.join(map(str, args.runs))} (each needs config.yaml and evals.jsonl).",
              file=sys.stderr)
        return 2
    rows = aggregate(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, args.out)
    if not args.no_plots:
        plot(runs, rows, args.out)
    print((args.out / "results.md").read_text())
    if args.wide:
        wide = wide_table(rows)
        (args.out / "results_wide.md").write_text(wide + "\n")
        print(wide + "\n")
    print(f"[seqrl] {len(runs)} runs -> {args.out}/results.md, results.csv" + ("" if args.no_plots else ", curves.png, bars.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

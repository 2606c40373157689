"""Tables and plots from a study's results file or from run directories.

    python -m seqrl.results studies/study6.jsonl.gz --finished --out results/study --into docs/results.md --block study6
    python -m seqrl.results studies/study6.jsonl.gz --finished --agents bc transformer+rope+no-time mingru+no-time \\
        --compact --into README.md --block headline
    python -m seqrl.results runs/* --out results/          # your own run directories

The inputs are results files (``seqrl.resultsfile``: ``python -m seqrl.study collect`` writes one per study), run
directories, or folders of run directories, read in the order given; ``--agents`` and ``--datasets`` keep some.
Writes ``results.md`` and ``results.csv``. ``results.md`` opens with a headline table: one row per
dataset, one column per agent and rollout, the last evaluation at the dataset's highest target, mean ±
std over seeds with each seed's value (``last_by_seed`` in the CSV). Then, as the CSV, one row per
(env, dataset, agent, target, rollout)
with the data's own mean normalized score (``data``), the normalized score, mean ± std over
seeds, of the last and the best evaluation and their gap (best − last), and what the last
evaluation's episodes did (mean length, shares that fell and that ended upside down, mean x
displacement). The agent is the run's label (``TrainConfig.label``): ``bc`` (one row, rollout ``state``,
no target), the backbone (``+gate``), and a ``+tag`` per non-default recipe option, so A/B arms
are separate rows.
Also ``curves.png`` (normalized score vs updates, mean with a ± std band over seeds; BC's last
score and the data's mean as horizontal lines) and ``bars.png`` (last evaluation per agent).
The data's score comes from each run's ``done.json`` (written when a run finishes, no dataset
is reloaded). A run counts once its ``evals.jsonl`` has at least one evaluation, but a run whose last
evaluation is earlier than the rest of its group's (still training, or killed) is left out of
the table (said on stderr, counted in the CSV's ``left_out``) so that "last" compares runs
at the same point of training; the curves keep it. A run directory's
``final_eval.json`` (``evaluate.py RUN --json RUN/final_eval.json``, e.g. with both rollout
modes) counts as its last evaluation. Columns ``params`` and ``updates/s`` (median of
``charts/updates_per_s``; both recorded in ``done.json``) describe the model and its training throughput.
``--compact`` makes the short headline of a front page (``headline.md``: no per-seed values; the best beside the last), ``--flips``
and ``--paired NAME`` two diagnostic tables (``seqrl.episode_tables``). ``--into FILE --block NAME``
also puts the table (the compact one with ``--compact``) into FILE between the lines ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``, so a page's table is refreshed by the command printed beside it.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seqrl.core.command import run_command
from seqrl.core.errors import SeqRLError
from seqrl.core.files import atomic_path, writable_file, writable_folder, write_atomic, write_text
from seqrl.episode_tables import flip_table, paired_table
from seqrl.resultsfile import is_results_file, read_results_file, run_record
from seqrl.training.rundir import RunSummary


@dataclass
class Run:
    path: Path
    env: str
    dataset: str
    agent: str  # the run's label (TrainConfig.label): bc, mingru, mingru+ur, transformer+ema0.999, ...
    seed: int
    evals: list[dict]  # evals.jsonl records: {"step", "results": [{"target", "rollout", "normalized_mean", ...}]}
    params: int | None = None
    updates_per_s: float | None = None
    data_score: float | None = None  # the dataset's mean normalized episode score (done.json)
    finished: bool = False  # it wrote done.json
    evaluations: dict[str, dict] = field(default_factory=dict)  # evaluate.py's <name>_eval.json, by name

    @property
    def key(self) -> tuple[str, str, str]:
        return self.env, self.dataset, self.agent

    @property
    def task(self) -> str:
        """``env-dataset``, as the configs name a task (hopper-medium)."""
        return f"{self.env}-{self.dataset}"

    def curve(self, target: float | None, rollout: str) -> dict[int, float]:
        return {e["step"]: r["normalized_mean"] for e in self.evals for r in e["results"]
                if r["target"] == target and r["rollout"] == rollout}

    def last_result(self, target: float | None, rollout: str) -> dict | None:
        return next((r for r in self.evals[-1]["results"] if (r["target"], r["rollout"]) == (target, rollout)), None)


def combo_key(combo: tuple[float | None, str]) -> tuple:
    """Sort (target, rollout) pairs: no target (BC) first, then by target, then rollout."""
    target, rollout = combo
    return target is not None, target or 0.0, rollout


def fmt_target(target: float | None) -> str:
    return "-" if target is None else f"{target:g}"


def run_from_record(record: dict) -> Run:
    """A run as the tables see it, from its record (``seqrl.resultsfile``): a ``final`` evaluation
    (``evaluate.py RUN --json RUN/final_eval.json``) replaces or extends the last evaluation."""
    evals = list(record["evals"])
    final = record["evaluations"].get("final")
    if final is not None:
        keys = {(r["target"], r["rollout"]) for r in final["results"]}
        last = [r for r in evals[-1]["results"] if (r["target"], r["rollout"]) not in keys]
        evals[-1] = {**evals[-1], "results": last + final["results"]}
    data = ((record["done"] or {}).get("data") or {}).get("normalized_mean")
    return Run(Path(record["run"]), record["env"], record["dataset"], record["agent"], record["seed"], evals,
               record["params"], record["updates_per_s"], data, record["finished"], record["evaluations"])


def load_runs(paths: list[Path]) -> list[Run]:
    """The evaluated runs among these run directories (a damaged one is said on stderr and left out)."""
    return [run_from_record(rec) for rec in map(run_record, paths) if rec is not None]


def read_runs(inputs: list[Path], finished: bool) -> list[Run]:
    """The runs of results files, run directories and folders of run directories, in the order given (a folder's
    and a file's in name order); only finished runs (``done.json``) if ``finished``."""
    runs: list[Run] = []
    for p in inputs:
        if is_results_file(p):
            runs += [run_from_record(rec) for rec in read_results_file(p)[1] if rec["finished"] or not finished]
            continue
        paths = [p] if (p / "config.yaml").is_file() else sorted(q for q in p.iterdir() if q.is_dir()) if p.is_dir() else []
        runs += load_runs([q for q in paths if (q / RunSummary.FILE).is_file() or not finished])
    return runs


def finite_runs(runs: list[Run]) -> list[Run]:
    """The runs whose every evaluation is a finite number; each other run (it diverged: an evaluation written as
    NaN by a version that let it through) is named on stderr and left out of the tables and plots."""
    kept = []
    for r in runs:
        bad = [(e["step"], v) for e in r.evals for res in e["results"] for v in [res.get("normalized_mean")]
               if not isinstance(v, (int, float)) or not math.isfinite(v)]
        if bad:
            step, value = bad[0]
            print(f"[seqrl] results: {r.path.name} left out: its evaluation at update {step} is {value} (not a "
                  "finite number): the run diverged", file=sys.stderr)
            continue
        kept.append(r)
    return kept


Chosen = dict[tuple[str, str], str]  # (merged agent NAME, env-dataset) -> the label it takes there


def merge_labels(runs: list[Run], merges: list[str] | None, chosen: Chosen | None = None) -> tuple[list[Run], Chosen]:
    """``--merge NAME=LABEL,LABEL...``: the runs of those labels shown as one agent NAME, for an agent whose recipe
    differs by dataset (e.g. a value-guided agent with eta set per task, labelled by it); ``LABEL@DATASET+DATASET``
    takes that label on those datasets only (where another label's runs are the recipe's, and this one's an old
    arm's). A merge with two of its labels run on one dataset would mix two arms in one cell: an error naming
    them. With ``chosen`` (the label each dataset took in the main runs; for other seeds' runs) only that label's
    runs are merged there. Returns the runs and which label each (NAME, dataset) took."""
    took: Chosen = {}
    for spec in merges or []:
        name, _, labels_text = spec.partition("=")
        labels: dict[str, set[str] | None] = {}  # label -> the datasets it is taken on (None: all)
        for item in (x for x in labels_text.split(",") if x):
            label, at, tasks = item.partition("@")
            labels[label] = set(tasks.split("+")) if at else None
        if not name or not labels or not all(labels) or any(t is not None and not all(t) for t in labels.values()):
            raise SeqRLError(f"--merge {spec}: give NAME=LABEL,LABEL, a label only on some datasets as "
                             "LABEL@DATASET+DATASET (e.g. value-mingru=mingru+value-q+no-time,"
                             "mingru+value-q-eta0.3+no-time@halfcheetah-medium+walker2d-medium).")
        for r in runs:
            only_on = labels.get(r.agent, set())  # a label not merged is taken on no dataset
            if (only_on is not None and r.task not in only_on) or \
                    (chosen is not None and chosen.get((name, r.task)) != r.agent):
                continue
            other = took.setdefault((name, r.task), r.agent)
            if other != r.agent:
                raise SeqRLError(f"--merge {name}: {other} and {r.agent} both have runs on {r.task}; one column takes "
                                 "one label per dataset (give --datasets, or merge fewer labels).")
        runs = [replace(r, agent=name) if took.get((name, r.task)) == r.agent else r for r in runs]
    return runs, took


def merged_caption(took: Chosen) -> str:
    """What each merged column took, per label: ``NAME: LABEL on task, task; LABEL on task``."""
    by_name: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (name, task), label in sorted(took.items()):
        by_name[name][label].append(task)
    return "; ".join(f"{name}: " + ", ".join(f"{label} on {' '.join(tasks)}" for label, tasks in labels.items())
                     for name, labels in by_name.items())


def select(runs: list[Run], agents: list[str] | None, datasets: list[str] | None, strict: bool = True) -> list[Run]:
    """The runs of these agent labels and datasets (``env-dataset``, e.g. hopper-medium); all for None. A name
    that no run has is an error that lists the names there are (unless not ``strict``: other seeds' runs, which
    need not hold every one)."""
    for flag, wanted, have in (("agents", agents, {r.agent for r in runs}), ("datasets", datasets, {r.task for r in runs})):
        unknown = [w for w in wanted or [] if w not in have]
        if unknown and strict:
            raise SeqRLError(f"--{flag} {' '.join(unknown)}: no run has that; the runs have: {', '.join(sorted(have))}.")
    return [r for r in runs if (agents is None or r.agent in agents) and (datasets is None or r.task in datasets)]


def _pm(mean: float, std: float, n: int) -> str:
    """mean ± std over seeds; the mean alone for one seed (a std over one value says nothing)."""
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def _mean(values: list) -> float | str:
    """Mean of the values that are not None or NaN; "" when there are none (a blank CSV cell)."""
    v = [float(x) for x in values if x is not None and not np.isnan(x)]
    return float(np.mean(v)) if v else ""


def aggregate(runs: list[Run]) -> list[dict]:
    """One row per (env, dataset, agent, target, rollout): last and best over seeds, and the data's score."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    data: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        groups[r.key].append(r)
        if r.data_score is not None:
            data[(r.env, r.dataset)].append(r.data_score)
    rows = []
    for (env, dataset, agent), group in sorted(groups.items()):
        combos = sorted({(res["target"], res["rollout"]) for r in group for res in r.evals[-1]["results"]}, key=combo_key)
        for target, rollout in combos:
            runs_c = [(r, r.curve(target, rollout)) for r in group]
            runs_c = [(r, c) for r, c in runs_c if c]
            # a run whose last evaluation is earlier than the others' (still training, or killed) would mix
            # "last" scores from different points of training: it is left out of the row, and said so
            final_step = max(max(c) for _, c in runs_c)
            behind = [(r, max(c)) for r, c in runs_c if max(c) < final_step]
            for r, step in behind:
                print(f"[seqrl] results: {r.path.name} left out of {agent} R={fmt_target(target)} {rollout}: its last "
                      f"evaluation is at update {step}, the others' at {final_step}", file=sys.stderr)
            kept = sorted(((r, c) for r, c in runs_c if max(c) == final_step), key=lambda rc: rc[0].seed)
            curves = [c for _, c in kept]
            last = [c[final_step] for c in curves]
            finals = [r.last_result(target, rollout) or {} for r, _ in kept]
            ep_std = [res["normalized_std"] for res in finals if "normalized_std" in res]
            best = [max(c.values()) for c in curves]
            params = [r.params for r in group if r.params is not None]
            ups = [r.updates_per_s for r in group if r.updates_per_s is not None]
            data_mean = _mean(data.get((env, dataset), []))
            rows.append({
                "env": env, "dataset": dataset, "data": data_mean, "agent": agent, "target": target,
                "rollout": rollout, "seeds": len(curves), "updates": final_step, "left_out": len(behind),
                "params": params[0] if params else "", "updates_per_s": round(float(np.mean(ups)), 2) if ups else "",
                "last_mean": float(np.mean(last)), "last_std": float(np.std(last)),
                "last_episode_std": round(float(np.mean(ep_std)), 2) if ep_std else "",
                "best_mean": float(np.mean(best)), "best_std": float(np.std(best)),
                "best_minus_last": float(np.mean(best) - np.mean(last)),
                "last_by_seed": " ".join(f"{r.seed}:{v:.1f}" for (r, _), v in zip(kept, last)),
                **{k: _mean([res.get(k) for res in finals])
                   for k in ("length_mean", "fell_fraction", "upside_down_fraction", "x_displacement_mean")},
            })
    return rows


def _num(v: float | str, fmt: str) -> str:
    return "-" if v == "" else f"{v:{fmt}}"


def headline_rows(rows: list[dict]) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str, str, str], dict]]:
    """The rows the headline shows: (each dataset's highest target, {(env, dataset, agent, rollout): row} with
    each agent at its own highest target, and BC, which takes none). ``rows``: ``aggregate``'s (target None or
    a number)."""
    high: dict[tuple, float] = {}  # (env, dataset) and (env, dataset, agent) -> highest target
    for r in rows:
        if r["target"] is not None:
            for key in ((r["env"], r["dataset"]), (r["env"], r["dataset"], r["agent"])):
                high[key] = max(high.get(key, r["target"]), r["target"])
    chosen = {(r["env"], r["dataset"], r["agent"], r["rollout"]): r for r in rows
              if r["target"] is None or r["target"] == high[(r["env"], r["dataset"], r["agent"])]}  # None: BC
    return {k: v for k, v in high.items() if len(k) == 2}, chosen


def headline_table(rows: list[dict]) -> str:
    """One row per dataset, one column per (agent, rollout): the last evaluation at the agent's highest target
    (BC: none), mean ± std over seeds and each seed's value in seed order (one seed: ± over episodes), and
    beside it the best evaluation (mean over seeds). The row's R is the dataset's highest target; an agent
    that was not evaluated at it (e.g. targets from the data) shows its own highest, marked "at R=…"."""
    high, chosen = headline_rows(rows)
    cols = sorted({k[2:] for k in chosen}, key=lambda c: (c[0] != "bc", c[0], c[1]))
    datasets = sorted({k[:2] for k in chosen})
    lines = ["| env | dataset | data | R | " + " | ".join(a if ro == "state" else f"{a} {ro}" for a, ro in cols) + " |",
             "|---|---|---:|---:|" + "---:|" * len(cols)]
    for env, dataset in datasets:
        cells = []
        for agent, rollout in cols:
            r = chosen.get((env, dataset, agent, rollout))
            if r is None:
                cells.append("-")
                continue
            if r["seeds"] > 1:
                seeds = ", ".join(v.split(":")[1] for v in r["last_by_seed"].split())
                cell = f"{r['last_mean']:.1f} ± {r['last_std']:.1f} ({seeds})"
            else:
                std = r["last_episode_std"]
                cell = f"{r['last_mean']:.1f}" + ("" if std == "" else f" ± {std:.1f}") + " (1 seed)"
            if r["target"] is not None and r["target"] != high.get((env, dataset)):
                cell += f" at R={fmt_target(r['target'])}"
            cells.append(f"{cell}; best {r['best_mean']:.1f}")
        data = next(r["data"] for k, r in chosen.items() if k[:2] == (env, dataset))
        lines.append(f"| {env} | {dataset} | {_num(data, '.1f')} | {fmt_target(high.get((env, dataset)))} | "
                     + " | ".join(cells) + " |")
    return ("Headline: the last evaluation at each dataset's highest target R (an agent not evaluated at R: at its "
            "own highest, marked; BC takes none), normalized, mean ± "
            "std over seeds, each seed's value in brackets in seed order (one seed: ± over its episodes); best = the "
            "mean over seeds of each run's best evaluation; data = the dataset's own mean. Every target and column "
            "is in the table after it.\n\n" + "\n".join(lines))


ROLLOUT_ORDER = {"state": 0, "window": 1, "recurrent": 2}


def compact_columns(chosen: dict[tuple[str, str, str, str], dict], agents: list[str] | None) -> list[tuple[str, str, str]]:
    """(agent, rollout, heading) per column: agents in the given order (else BC first, then by name), each
    rollout of an agent (state, window, recurrent); the rollout is named only for an agent shown in several."""
    names = agents or sorted({k[2] for k in chosen}, key=lambda a: (a != "bc", a))
    cols = []
    for agent in names:
        rollouts = sorted({k[3] for k in chosen if k[2] == agent}, key=lambda ro: (ROLLOUT_ORDER.get(ro, 9), ro))
        cols += [(agent, ro, agent if len(rollouts) == 1 else f"{agent} {ro}") for ro in rollouts]
    return cols


def seeds_name(seeds: set[int]) -> str:
    """How a caption names a set of seeds: ``seeds 0-2`` for a run of them, else ``seed 3`` / ``seeds 0, 4``."""
    s = sorted(seeds)
    if len(s) > 1 and s == list(range(s[0], s[-1] + 1)):
        return f"seeds {s[0]}-{s[-1]}"
    return ("seeds " if len(s) > 1 else "seed ") + ", ".join(map(str, s))


def compact_table(rows: list[dict], agents: list[str] | None = None, datasets: list[str] | None = None,
                  beside: list[dict] | None = None, beside_name: str = "", diagnostics: bool = False) -> str:
    """The headline without brackets: one row per dataset (in the given ``env-dataset`` order, else by name) with
    the data's mean and the highest target R, one column per agent and rollout: the last evaluation at the agent's
    highest target, mean ± std over seeds (an agent not evaluated at R: marked; a cell of fewer seeds: its n), and
    ``beside`` (``aggregate``'s rows of other seeds, ``beside_name``, e.g. those the recipe was decided on): their last
    evaluation's mean after the cell, where the same agent and dataset has one. ``diagnostics``: a second table of
    the same cells, what those last evaluations' episodes did (length, fallen, x)."""
    high, chosen = headline_rows(rows)
    beside_rows = headline_rows(beside)[1] if beside else {}
    cols = compact_columns(chosen, agents)
    tasks = sorted({k[:2] for k in chosen})
    if datasets:
        tasks = sorted(tasks, key=lambda t: datasets.index(f"{t[0]}-{t[1]}"))
    n = max(r["seeds"] for r in chosen.values())
    fewer = any(r["seeds"] < n for k, r in chosen.items() if (k[2], k[3]) in {c[:2] for c in cols})

    def score(r: dict, key: tuple[str, str, str, str]) -> str:
        other = beside_rows.get(key)
        return compact_cell(r, high.get(key[:2]), n) + ("" if other is None else f"; {beside_name}: {other['last_mean']:.1f}")

    lines = compact_grid(chosen, high, cols, tasks, score)
    if len(tasks) > 1:
        means = [[chosen[(*t, agent, rollout)]["last_mean"] for t in tasks if (*t, agent, rollout) in chosen]
                 for agent, rollout, _ in cols]
        lines.append(f"| mean of the {len(tasks)} datasets | | | "
                     + " | ".join(f"{np.mean(m):.1f}" if len(m) == len(tasks) else "-" for m in means) + " |")
    caption = (f"Normalized score of the last evaluation at each dataset's highest target R (BC takes none), mean ± std "
               f"over {n} seed{'s' if n > 1 else ''}{' (n: a cell with fewer)' if fewer else ''}, and beside it the mean "
               "of each seed's best evaluation; data: the dataset's own mean"
               + (" (last row: the mean of the last evaluations over the datasets, for an agent run on all)."
                  if len(tasks) > 1 else ".")
               + (f" After ';': the mean over {beside_name} of the same agent's last evaluation, where it was run."
                  if beside_rows else ""))
    text = caption + "\n\n" + "\n".join(lines)
    if diagnostics:
        text += ("\n\nWhat the episodes of the same last evaluations did, mean over the seeds: mean episode length "
                 "(steps; 1000 is the time limit), share of episodes that fell (the env's health check ended them), "
                 "mean x displacement (m).\n\n" + "\n".join(compact_grid(chosen, high, cols, tasks, lambda r, _: diagnostic_cell(r))))
    return text


def compact_grid(chosen: dict[tuple[str, str, str, str], dict], high: dict[tuple[str, str], float],
                 cols: list[tuple[str, str, str]], tasks: list[tuple[str, str]], cell: Any) -> list[str]:
    """A compact table's heading and one line per dataset: data, R, and ``cell(row, key)`` per column ("-": none)."""
    lines = ["| dataset | data | R | " + " | ".join(c[2] for c in cols) + " |", "|---|---:|---:|" + "---:|" * len(cols)]
    for env, dataset in tasks:
        keys = [(env, dataset, agent, rollout) for agent, rollout, _ in cols]
        cells = ["-" if k not in chosen else cell(chosen[k], k) for k in keys]
        data = next(r["data"] for k, r in chosen.items() if k[:2] == (env, dataset))
        lines.append(f"| {env}-{dataset} | {_num(data, '.1f')} | {fmt_target(high.get((env, dataset)))} | "
                     + " | ".join(cells) + " |")
    return lines


def diagnostic_cell(r: dict) -> str:
    """``length`` steps, ``fell`` %, x ``m`` of a row's last evaluations (means over seeds; "-" where unknown)."""
    fell = r["fell_fraction"]
    if r["length_mean"] == fell == r["x_displacement_mean"] == "":
        return "-"
    return (f"{_num(r['length_mean'], '.0f')} steps, {_num(fell if fell == '' else 100 * fell, '.0f')}% fell, "
            f"x {_num(r['x_displacement_mean'], '.1f')} m")


def compact_cell(r: dict, high: float | None, n: int) -> str:
    """``mean ± std`` over seeds (one seed: the mean) of the last evaluation, ``(best …)``: the mean of each seed's
    best, ``n=k`` with fewer seeds than ``n``, `` at R=…`` off R."""
    cell = f"{r['last_mean']:.1f} ± {r['last_std']:.1f}" if r["seeds"] > 1 else f"{r['last_mean']:.1f}"
    cell += f" (best {r['best_mean']:.1f}" + (f", n={r['seeds']})" if r["seeds"] < n else ")")
    if r["target"] is not None and r["target"] != high:
        cell += f" at R={fmt_target(r['target'])}"
    return cell


def write_tables(rows: list[dict], out: Path) -> None:
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_atomic(out / "results.csv", table.getvalue().encode())
    lines = ["| env | dataset | data | agent | params | updates/s | target | rollout | seeds | updates | last | "
             "last: std over episodes | best | best − last | last: length | last: fell | last: upside down | "
             "last: x (m) |",
             "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] != "" else "-"
        lines.append(f"| {r['env']} | {r['dataset']} | {_num(r['data'], '.1f')} | {r['agent']} | {params} | "
                     f"{r['updates_per_s'] or '-'} | {fmt_target(r['target'])} | {r['rollout']} | {r['seeds']} | "
                     f"{r['updates']} | {_pm(r['last_mean'], r['last_std'], r['seeds'])} | {r['last_episode_std'] or '-'} | "
                     f"{_pm(r['best_mean'], r['best_std'], r['seeds'])} | {r['best_minus_last']:.1f} | "
                     f"{_num(r['length_mean'], '.0f')} | {_num(r['fell_fraction'], '.0%')} | "
                     f"{_num(r['upside_down_fraction'], '.0%')} | {_num(r['x_displacement_mean'], '.1f')} |")
    write_text(out / "results.md", headline_table(rows) + "\n\n"
               "Normalized score, mean ± std over seeds (each seed: mean over its evaluation episodes); last = final "
               "evaluation, best = best evaluation of the run; the std over a run's evaluation episodes, averaged over "
               "seeds, is shown beside it. data = the dataset's own mean normalized episode score. BC (agent bc) takes no "
               "target: rollout 'state'. The last evaluation's episodes: mean length (steps), share that fell "
               "(terminated before the time limit), share that ended upside down (flipped over; not recorded before "
               "that field existed: -) and mean forward progress x (m).\n\n" + "\n".join(lines) + "\n")


def wide_table(rows: list[dict]) -> str:
    """One row per (env, dataset, agent), one column per (rollout, target): the last evaluation,
    mean ± std over seeds (over evaluation episodes when there is one seed), and the data's score."""
    cols = sorted({(r["rollout"], r["target"]) for r in rows}, key=lambda c: (c[1] is not None, -(c[1] or 0), c[0]))
    keys = sorted({(r["env"], r["dataset"], r["agent"]) for r in rows})
    head = ["env", "dataset", "data", "agent", "params", "updates/s", "seeds"]
    head += [ro if t is None else f"{ro} R={t:g}" for ro, t in cols]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|---|---:|---:|---:|" + "---:|" * len(cols)]
    for key in keys:
        sel = {(r["rollout"], r["target"]): r for r in rows if (r["env"], r["dataset"], r["agent"]) == key}
        any_r = next(iter(sel.values()))
        cells = []
        for c in cols:
            r = sel.get(c)
            std = None if r is None else (r["last_std"] if r["seeds"] > 1 else r["last_episode_std"])
            cells.append("-" if r is None else f"{r['last_mean']:.1f} ± {std:.1f}" if std != "" else f"{r['last_mean']:.1f}")
        params = f"{any_r['params']:,}" if any_r["params"] != "" else "-"
        lines.append("| " + " | ".join([key[0], key[1], _num(any_r["data"], ".1f"), key[2], params,
                                         str(any_r["updates_per_s"] or "-"), str(any_r["seeds"]), *cells]) + " |")
    return "\n".join(lines)


def save_figure(fig: Any, path: Path) -> None:
    """A matplotlib figure as a PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def plot(runs: list[Run], rows: list[dict], out: Path) -> None:
    """curves.png and bars.png: one panel per (env, dataset, target, rollout) of the Decision-model rows
    (a BC-only dataset gets BC's own panel); BC's last score and the data's mean as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def references(ax, env: str, dataset: str) -> None:
        for r in rows:
            if (r["env"], r["dataset"]) == (env, dataset) and r["target"] is None:
                ax.axhline(r["last_mean"], color="tab:red", ls="--", lw=1, label=f"{r['agent']} (last)")
        data = next((r["data"] for r in rows if (r["env"], r["dataset"]) == (env, dataset) and r["data"] != ""), None)
        if data is not None:
            ax.axhline(data, color="gray", ls=":", lw=1, label="data mean")

    conditioned = {(r["env"], r["dataset"]) for r in rows if r["target"] is not None}
    panels = sorted({(r["env"], r["dataset"], r["target"], r["rollout"]) for r in rows
                     if r["target"] is not None or (r["env"], r["dataset"]) not in conditioned},
                    key=lambda p: (p[0], p[1], *combo_key((p[2], p[3]))))

    def title(env: str, dataset: str, target: float | None, rollout: str) -> str:
        return f"{env} {dataset}\n" + (rollout if target is None else f"R={target:g}, {rollout}")

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (env, dataset, target, rollout) in zip(axes[0], panels):
        for agent in sorted({r.agent for r in runs if (r.env, r.dataset) == (env, dataset)}):
            curves = [r.curve(target, rollout) for r in runs if r.key == (env, dataset, agent)]
            curves = [c for c in curves if c]
            if not curves:
                continue
            steps = sorted(set.intersection(*(set(c) for c in curves)))
            vals = np.array([[c[s] for s in steps] for c in curves])
            m, sd = vals.mean(0), vals.std(0)
            ax.plot(steps, m, marker="o", ms=3, label=f"{agent} (n={len(curves)})")
            ax.fill_between(steps, m - sd, m + sd, alpha=0.2)
        if target is not None:
            references(ax, env, dataset)
        ax.set(title=title(env, dataset, target, rollout), xlabel="updates", ylabel="normalized score")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "curves.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (env, dataset, target, rollout) in zip(axes[0], panels):
        sel = [r for r in rows if (r["env"], r["dataset"], r["target"], r["rollout"]) == (env, dataset, target, rollout)]
        x = np.arange(len(sel))
        ax.bar(x, [r["last_mean"] for r in sel], yerr=[r["last_std"] for r in sel], capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, [f"{r['agent']}\n(n={r['seeds']})" for r in sel], fontsize=8)
        references(ax, env, dataset)
        ax.set(title=title(env, dataset, target, rollout).replace("\n", ": last evaluation\n", 1), ylabel="normalized score")
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "bars.png")
    plt.close(fig)


def replace_block(text: str, block: str, content: str) -> str:
    """``text`` with what lies between the lines ``<!-- block:start -->`` and ``<!-- block:end -->`` replaced by
    ``content`` (the marker lines stay, so the block can be refreshed again)."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    lines = text.split("\n")
    where = {m: [i for i, line in enumerate(lines) if line.strip() == m] for m in (start, end)}
    if len(where[start]) != 1 or len(where[end]) != 1 or where[start][0] > where[end][0]:
        raise SeqRLError(f"expected one line '{start}' followed by one line '{end}' (found {len(where[start])} and "
                         f"{len(where[end])}); add them around the place the table should go.")
    i, j = where[start][0], where[end][0]
    return "\n".join(lines[: i + 1] + content.strip("\n").split("\n") + lines[j:])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path,
                    help="results files (studies/<study>.jsonl.gz), run directories, or folders holding run directories")
    ap.add_argument("--out", type=Path, default=Path("results"), help="folder for results.md/.csv, curves.png, bars.png")
    ap.add_argument("--no-plots", action="store_true", help="tables only")
    ap.add_argument("--wide", action="store_true",
                    help="also print one row per agent, one column per rollout and target (results_wide.md)")
    ap.add_argument("--finished", action="store_true",
                    help="only runs that finished (done.json): leaves out runs still training, which otherwise count "
                         "with their evaluations so far")
    ap.add_argument("--agents", nargs="+", metavar="LABEL",
                    help="only these agents (labels as the tables show them: bc, mingru+no-time, ...); with "
                         "--compact, its columns in this order")
    ap.add_argument("--merge", action="append", metavar="NAME=LABEL,LABEL[@DATASET+DATASET]",
                    help="show the runs of these agent labels as one agent NAME (--agents names it), for an agent "
                         "whose recipe differs by dataset, e.g. eta set per task (which labels its runs); "
                         "LABEL@DATASET+DATASET takes a label on those datasets only; refused where two of the "
                         "labels have runs on one dataset; may be given more than once")
    ap.add_argument("--datasets", nargs="+", metavar="ENV-DATASET",
                    help="only these datasets (hopper-medium, walker2d-medium-replay, ...); with --compact, its rows "
                         "in this order")
    ap.add_argument("--compact", action="store_true",
                    help="also write headline.md: one row per dataset, one column per agent (and rollout), the last "
                         "evaluation at the highest target, mean ± std over seeds, the data's mean; no per-seed values. "
                         "It is the table printed and put into --into")
    ap.add_argument("--beside", nargs="+", type=Path, metavar="RUNS",
                    help="with --compact: results files or run directories of other seeds (e.g. studies/study6.jsonl.gz, "
                         "the seeds a recipe was decided on), whose last evaluation's mean over seeds is shown after "
                         "each cell of the same agent and dataset (--finished applies to them too)")
    ap.add_argument("--diagnostics", action="store_true",
                    help="with --compact: a second table of the same cells, what the last evaluations' episodes did "
                         "(mean length, share fallen, x displacement; means over seeds)")
    ap.add_argument("--flips", action="store_true",
                    help="also write flips.md: per agent and rollout, the share of episodes that ended upside down "
                         "over every evaluation at the highest target, and the mean score with and without them")
    ap.add_argument("--paired", metavar="NAME",
                    help="also write paired_NAME.md: each run's last evaluation (arm A) against its re-evaluation "
                         "NAME (evaluate.py --json RUN/NAME_eval.json, e.g. data_best), target by target")
    ap.add_argument("--into", type=Path, metavar="FILE",
                    help="also put the table into FILE between the lines '<!-- BLOCK:start -->' and "
                         "'<!-- BLOCK:end -->' (see --block), replacing what was there")
    ap.add_argument("--block", default="results", metavar="BLOCK",
                    help="name of the marked block that --into replaces (default: results)")
    return ap.parse_args(argv)


def check_inputs(args: argparse.Namespace) -> None:
    """Fail before any work: a missing --into file or marker, a missing input, an --out that is a file."""
    if args.into is not None:
        try:
            replace_block(args.into.read_text(), args.block, "")
        except OSError as e:
            raise SeqRLError(f"--into {args.into}: {e.strerror}.") from None
    for flag, given in (("--beside", args.beside), ("--diagnostics", args.diagnostics)):
        if given and not args.compact:
            raise SeqRLError(f"{flag} belongs to the compact table: add --compact.")
    missing = [str(p) for p in [*args.runs, *(args.beside or [])] if not p.exists()]
    if missing:
        raise SeqRLError(f"{', '.join(missing)}: no such run directory, folder or results file.")
    writable_folder(args.out, "--out")
    if args.into is not None:
        writable_file(args.into, "--into")


def check_paired(runs: list[Run], name: str | None) -> None:
    """--paired NAME needs a run with that evaluation: else an error naming the evaluations there are."""
    have = {n for r in runs for n in r.evaluations}
    if name is not None and name not in have:
        raise SeqRLError(f"--paired {name}: no run has an evaluation of that name ({name}_eval.json); the runs have: "
                         f"{', '.join(sorted(have)) or 'none'}.")


def write_extra(name: str, text: str, out: Path) -> None:
    """An optional table: into ``out/name`` and printed."""
    write_text(out / name, text + "\n")
    print(text + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(lambda: tables(args), lambda stop: f"stopped by {stop.name}; the tables in {args.out} are "
                                                          "whole (each file the old one or the new one).")


def read_merged(inputs: list[Path], args: argparse.Namespace, chosen: Chosen | None = None) -> tuple[list[Run], Chosen]:
    """The finite runs of ``inputs`` of --datasets and --agents, --merge's labels joined first; with ``chosen``
    (other seeds' runs) as the main runs took them, and no name required to be there (``select``'s strict)."""
    runs = select(read_runs(inputs, args.finished), None, args.datasets, strict=chosen is None)
    runs, took = merge_labels(runs, args.merge, chosen)
    return finite_runs(select(runs, args.agents, None, strict=chosen is None)), took


def tables(args: argparse.Namespace) -> int:
    """The command's work: read and check the inputs, then write the tables and plots."""
    check_inputs(args)
    runs, merged = read_merged(args.runs, args)
    check_paired(runs, args.paired)
    if not runs:
        raise SeqRLError(f"no evaluated runs among {', '.join(map(str, args.runs))} (each needs config.yaml and "
                         "evals.jsonl, and a finite evaluation).")
    rows = aggregate(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, args.out)
    if not args.no_plots:
        plot(runs, rows, args.out)
    table = (args.out / "results.md").read_text()
    if args.compact:
        keys = {r.key for r in runs}
        beside = [r for r in read_merged(args.beside, args, merged)[0] if r.key in keys] if args.beside else []
        table = compact_table(rows, args.agents, args.datasets, aggregate(beside) if beside else None,
                              seeds_name({r.seed for r in beside}), args.diagnostics) + "\n"
        if merged:
            table += f"\nColumns of an agent whose recipe differs by dataset (--merge), the label each took: {merged_caption(merged)}.\n"
        write_text(args.out / "headline.md", table)
    print(table)
    if args.into is not None:
        write_atomic(args.into, replace_block(args.into.read_text(), args.block, table).encode())
        print(f"[seqrl] table -> {args.into} (block {args.block})")
    if args.wide:
        write_extra("results_wide.md", wide_table(rows), args.out)
    if args.flips:
        write_extra("flips.md", flip_table(runs), args.out)
    if args.paired:
        write_extra(f"paired_{args.paired}.md", paired_table(runs, args.paired), args.out)
    print(f"[seqrl] {len(runs)} runs -> {args.out}/results.md, results.csv" + ("" if args.no_plots else ", curves.png, bars.png"))
    return 0

if __name__ == "__main__":
    sys.exit(main())

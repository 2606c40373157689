"""Studies as data: a study file says which runs make a study; one command runs them, one collects their outcome.

    python -m seqrl.study plan studies/study6.yaml                      # its runs, and which are finished
    python -m seqrl.study run studies/study6.yaml [--jobs 2] [--until HH:MM] [--runs-root DIR]
    python -m seqrl.study run studies/seeds345.yaml --only '*__iql__*'   # just the runs whose names match
    python -m seqrl.study run studies/study6.yaml --launcher slurm --slurm-config cluster.yaml   # one job array
    python -m seqrl.study status studies/study6.yaml                   # Slurm: queued, running, finished, failed
    python -m seqrl.study collect studies/study6.yaml [--runs-root DIR] # -> studies/study6.jsonl.gz
    python -m seqrl.results studies/study6.jsonl.gz --finished --out results/study6

A study file (YAML, ``studies/<name>.yaml``) holds what ``seqrl.grid`` takes, as a list of blocks::

    description: what the study asks, one paragraph
    order: seed-major          # seed-major: every block for seed 0, then for seed 1, ...; block-major (the default):
                               # each block for all its seeds, block after block
    seeds: [0, 1, 2]           # the blocks' seeds unless a block says its own
    datasets: [hopper-medium, walker2d-medium]   # what {dataset} in a block's configs stands for, unless it says
    blocks:
      - configs: [../configs/cpu/bc-{dataset}.yaml]   # paths relative to the study file; {dataset} expanded
        flags: --threads 1                            # train_offline.py flags for every run of the block
      - configs: [../configs/cpu/{dataset}.yaml]
        backbones: [transformer, mingru]              # Decision-model configs need them; BC configs make one run/seed
        flags: --keep-checkpoints                     # {runs_root}: the study's runs root (--critic-from {runs_root}:
                                                      #   the IQL runs of an earlier block, which a run waits for)
        evaluate:                                     # after training, each finished run's last checkpoint again:
          - name: data_best                           #   into <run>/data_best_eval.json (kept in the results file)
            targets: data-best                        #   the data's best episode return, a list of returns, or
                                                      #   run (the run's own targets, the default)
          - name: cand5                               # flags: evaluate.py's, e.g. a value-guided run's candidates
            flags: --candidates 5

``run`` trains the study's runs through ``seqrl.grid`` into the runs root (default ``runs/studies/<name>``, outside
git): a finished run is skipped, an unfinished one resumed, so the command is re-run until the study is done;
``--until`` as the grid's; ``--only`` (``run`` and ``plan``) keeps the runs whose names match one of its shell
patterns (``'*__iql__*'``, ``'hopper__medium__*'``), the rest left for a later command. Then the blocks' evaluations, for the finished runs that still have their weights and
not that evaluation yet. The datasets are read as training reads them (``MINARI_DATASETS_PATH``).
With ``--launcher slurm`` ``run`` submits the runs not finished, queued or running as one job array and returns
(``seqrl.slurm``); the blocks' evaluations are made by ``run`` once they are finished. ``status`` says where each
submitted run stands.
``collect`` writes the study's results file (``seqrl.resultsfile``) from the finished runs under the runs root
that the study names, found by what their saved configs say (env, dataset, agent label, seed), not by folder
name; runs it names that are not finished are listed, and so are run directories there that it does not name.

The results file is the study's memory across machines: a run recorded there, whose recipe (its saved config but
for where and on how many threads it ran) is its job's now, and whose run directory is not under the runs root
(another machine's, a sitting whose machine is gone), counts as finished: ``run`` does not train it again (unless
a run that is trained reads its weights, as ``--critic-from`` reads an IQL run's), ``plan`` says ``recorded``,
and ``collect`` keeps its record beside those of the runs under the root. A record whose job's config has
changed since (or of a config format this seqrl no longer reads) is superseded: ``run`` trains that job again, and
``collect`` keeps the old record, naming it, until a run of the job under the root replaces it. A record that no
job of the study names now (a block changed since it ran) is kept too, named: nothing recorded is dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import difflib
import fnmatch
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seqrl.core.errors import SEED_RULE, SeqRLError, seed_ok
from seqrl.core.command import run_command, signals_ignored, stop_on_signals, stopped_by
from seqrl.grid import Children, Job, check_launcher, existing, launch, make_jobs, parse_until, prerequisites
from seqrl.resultsfile import HASH_IGNORES, SUFFIX, read_results_file, run_record, write_results_file
from seqrl.slurm import SlurmResources, add_launcher_flags, print_status
from seqrl.training.config import TrainConfig
from seqrl.training.rundir import RunSummary

STUDY_KEYS = ("description", "order", "seeds", "datasets", "blocks")
BLOCK_KEYS = ("configs", "backbones", "seeds", "datasets", "flags", "evaluate")
EVALUATE_KEYS = ("name", "targets", "flags")
ORDERS = ("block-major", "seed-major")
DATA_BEST = "data-best"
RunKey = tuple[str, str, str, int]  # env, dataset (as the config gives it), agent label, seed


@dataclass(frozen=True)
class Evaluation:
    """A re-evaluation of a finished run's last checkpoint, into ``<run>/<name>_eval.json``."""

    name: str
    targets: tuple[float, ...] | None  # None: the data's best episode return (done.json); () the run's own
    flags: tuple[str, ...] = ()  # evaluate.py flags, e.g. --candidates 5


@dataclass(frozen=True)
class Block:
    """Configs x backbones x seeds with the same flags (one grid command), and what to evaluate after."""

    configs: tuple[Path, ...]
    backbones: tuple[str, ...] | None
    seeds: tuple[int, ...]
    flags: tuple[str, ...]
    evaluate: tuple[Evaluation, ...]


@dataclass(frozen=True)
class Study:
    """A study file, checked: its name (the file's stem), description, order and blocks."""

    name: str
    path: Path
    description: str
    order: str
    blocks: tuple[Block, ...]

    @property
    def results_file(self) -> Path:
        """Where ``collect`` writes by default: beside the study file, ``<name>.jsonl.gz``."""
        return self.path.with_name(self.name + SUFFIX)


def _unknown(where: str, given: dict, known: tuple[str, ...]) -> None:
    """A clear error for the first key of ``given`` not in ``known``, with the nearest known key."""
    for key in given:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SeqRLError(f"{where}: unknown key {key!r}{hint}; the keys are: {', '.join(known)}.")


def _list(where: str, key: str, value: Any, kind: type) -> tuple:
    """``value`` as a tuple of ``kind`` (a single value counts as a list of one)."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
        raise SeqRLError(f"{where}: {key} must be a non-empty list of {kind.__name__}s (got {value!r}).")
    return tuple(items)


def _seeds(where: str, value: Any) -> tuple[int, ...]:
    seeds = _list(where, "seeds", value, int)
    if not all(map(seed_ok, seeds)) or len(set(seeds)) != len(seeds):
        raise SeqRLError(f"{where}: seeds must be distinct seeds {SEED_RULE} (got {value!r}).")
    return seeds


def _flags(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    return _list(where, "flags", value, str) if value is not None else ()


def _evaluation(where: str, item: Any) -> Evaluation:
    if not isinstance(item, dict):
        raise SeqRLError(f"{where}: an evaluate entry is a mapping with name and targets (got {item!r}).")
    _unknown(where, item, EVALUATE_KEYS)
    name, targets = item.get("name"), item.get("targets", "run")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name) or name == "final":
        raise SeqRLError(f"{where}: evaluate name {name!r}: lower-case letters, digits and _ (not 'final', which "
                         "replaces the last evaluation); the run gets <name>_eval.json.")
    flags = _flags(f"{where}: evaluate {name}", item.get("flags"))
    if targets == DATA_BEST:
        return Evaluation(name, None, flags)
    if targets == "run":
        return Evaluation(name, (), flags)
    values = targets if isinstance(targets, list) else [targets]
    if not values or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in values):
        raise SeqRLError(f"{where}: evaluate {name}: targets must be {DATA_BEST!r}, 'run' (the run's own, the default) "
                         f"or a list of returns (got {targets!r}).")
    return Evaluation(name, tuple(float(t) for t in values), flags)


def _configs(where: str, value: Any, datasets: tuple[str, ...] | None, base: Path) -> tuple[Path, ...]:
    """The block's config files, ``{dataset}`` expanded over ``datasets``, relative to ``base``; each must exist."""
    paths = []
    for c in _list(where, "configs", value, str):
        if "{dataset}" in c and not datasets:
            raise SeqRLError(f"{where}: {c} names {{dataset}}; say datasets: [...] in the block or the study.")
        paths += [c.format(dataset=d) for d in datasets] if "{dataset}" in c else [c]
    for p in paths:
        if not (base / p).is_file():
            raise SeqRLError(f"{where}: config {p}: no such file (looked for {(base / p).resolve()}).")
    return tuple(base / p for p in paths)


def _block(where: str, raw: Any, seeds: tuple[int, ...], datasets: tuple[str, ...] | None, base: Path) -> Block:
    if not isinstance(raw, dict):
        raise SeqRLError(f"{where}: a block is a mapping with configs, backbones, seeds, datasets, flags (got {raw!r}).")
    _unknown(where, raw, BLOCK_KEYS)
    if "configs" not in raw:
        raise SeqRLError(f"{where}: no configs; say which config files the block trains.")
    datasets = _list(where, "datasets", raw["datasets"], str) if "datasets" in raw else datasets
    backbones = _list(where, "backbones", raw["backbones"], str) if "backbones" in raw else None
    evaluate = raw.get("evaluate") or []
    return Block(_configs(where, raw["configs"], datasets, base), backbones,
                 _seeds(where, raw["seeds"]) if "seeds" in raw else seeds, _flags(where, raw.get("flags")),
                 tuple(_evaluation(where, e) for e in (evaluate if isinstance(evaluate, list) else [evaluate])))


def load_study(path: Path) -> Study:
    """Read and check a study file; a ``SeqRLError`` saying where and what for anything wrong in it."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SeqRLError(f"{path}: {e.strerror}.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SeqRLError(f"{path}: not valid YAML ({where}{getattr(e, 'problem', None) or e}).") from None
    if not isinstance(raw, dict) or not raw.get("blocks"):
        raise SeqRLError(f"{path}: a study file is a mapping with blocks: [...] (and {', '.join(STUDY_KEYS[:-1])}).")
    _unknown(str(path), raw, STUDY_KEYS)
    order = raw.get("order", ORDERS[0])
    if order not in ORDERS:
        near = difflib.get_close_matches(str(order), ORDERS, n=1)
        raise SeqRLError(f"{path}: order {order!r}{f' (did you mean {near[0]!r}?)' if near else ''}; one of "
                         f"{', '.join(ORDERS)}.")
    seeds = _seeds(str(path), raw.get("seeds", [0]))
    datasets = _list(str(path), "datasets", raw["datasets"], str) if "datasets" in raw else None
    if not isinstance(raw["blocks"], list):
        raise SeqRLError(f"{path}: blocks must be a list of blocks.")
    blocks = tuple(_block(f"{path}, block {i}", b, seeds, datasets, path.parent) for i, b in enumerate(raw["blocks"], 1))
    return Study(path.name.removesuffix(".yaml"), path, str(raw.get("description", "")).strip(), order, blocks)


def expand(study: Study, root: Path | None = None) -> list[tuple[Job, Block]]:
    """The study's runs in the order they start, each with its block; a run named twice counts once (the first).
    ``{runs_root}`` in a block's flags is ``root`` (default: the study's own), e.g. ``--critic-from {runs_root}``:
    the IQL runs of an earlier block."""
    runs_root = str((root or default_root(study)).resolve())
    if study.order == "seed-major":
        seeds = list(dict.fromkeys(s for b in study.blocks for s in b.seeds))
        steps = [(i, b, [s]) for s in seeds for i, b in enumerate(study.blocks, 1) if s in b.seeds]
    else:
        steps = [(i, b, list(b.seeds)) for i, b in enumerate(study.blocks, 1)]
    runs: dict[str, tuple[Job, Block]] = {}
    for i, block, seeds in steps:
        try:
            jobs = make_jobs(list(block.configs), list(block.backbones) if block.backbones else None, seeds,
                             [f.replace("{runs_root}", runs_root) for f in block.flags])
        except SeqRLError as e:
            raise SeqRLError(f"{study.path}, block {i}: {e}") from None
        for job in jobs:
            runs.setdefault(job.prefix, (job, block))
    return list(runs.values())


def only(runs: list[tuple[Job, Block]], patterns: list[str] | None, study: Study) -> list[tuple[Job, Block]]:
    """The runs whose names (``env__dataset__agent__seed__``) match one of the shell ``patterns`` (all without
    any); a pattern that matches none is an error naming what the names look like."""
    if not patterns:
        return runs
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(job.prefix, pattern) for job, _ in runs):
            examples = ", ".join(job.prefix for job, _ in runs[:3])  # expand names each run once
            raise SeqRLError(f"--only {pattern!r} matches none of {study.path}'s {len(runs)} runs (their names "
                             f"look like {examples}; quote the pattern, e.g. --only '*__iql__*').")
    return [(job, block) for job, block in runs if any(fnmatch.fnmatchcase(job.prefix, p) for p in patterns)]


def job_key(job: Job) -> RunKey:
    """What identifies the job's run in a saved config: env, dataset, agent label, seed."""
    cfg = job.cfg
    return cfg.env or "", cfg.dataset, cfg.label(), cfg.seed


def record_key(record: dict[str, Any]) -> RunKey:
    """``job_key`` of a run record."""
    return record["env"], record["dataset"], record["agent"], record["seed"]


def finished_records(root: Path) -> dict[RunKey, list[dict[str, Any]]]:
    """The records of the finished runs under ``root``, by what their configs say, each key's in name order."""
    found: dict[RunKey, list[dict[str, Any]]] = {}
    for run in sorted(p for p in root.iterdir() if (p / RunSummary.FILE).is_file()) if root.is_dir() else []:
        record = run_record(run)
        if record is not None:
            found.setdefault(record_key(record), []).append(record)
    return found


RECIPE_IGNORES = (*HASH_IGNORES, "threads")  # where a run ran and on how many threads: not its recipe


def recipe(config: dict[str, Any]) -> dict[str, Any] | None:
    """What of a saved config makes a run's recipe: the config rebuilt by this seqrl (a field added since the run
    takes its default), without ``RECIPE_IGNORES``; of ``critic_from``, a path on the machine that ran it, only
    whether it was given. None: a config this seqrl does not read (an older format)."""
    try:
        values = TrainConfig.from_dict(config, "a recorded run's config").to_dict()
    except (SeqRLError, TypeError, ValueError, KeyError):
        return None
    kept = {k: v for k, v in values.items() if k not in RECIPE_IGNORES}
    kept["critic_from"] = values.get("critic_from") is not None
    return kept


@dataclass(frozen=True)
class Recorded:
    """What a study's results file holds of its runs, by job key: the records that stand for a job of the study
    (finished, of the job's recipe now), those of its jobs whose recipe has changed since (superseded), and those
    that no job of the study names now (unnamed: a block changed since, e.g. a new flag that relabels its runs)."""

    path: Path
    records: dict[RunKey, dict[str, Any]]
    superseded: dict[RunKey, dict[str, Any]] = dataclasses.field(default_factory=dict)
    unnamed: dict[RunKey, dict[str, Any]] = dataclasses.field(default_factory=dict)


def run_names(records: dict[RunKey, dict[str, Any]]) -> str:
    """The run names of ``records``, sorted, comma-separated."""
    return ", ".join(sorted(r["run"] for r in records.values()))


def recorded(study: Study, runs: list[tuple[Job, Block]], path: Path | None = None) -> Recorded:
    """The study's runs recorded in its results file (``path``, default beside the study file), by job key."""
    path = path or study.results_file
    if not path.is_file():
        return Recorded(path, {})
    header, records = read_results_file(path)
    if header.get("study") != study.name:
        raise SeqRLError(f"{path} holds the runs of study {header.get('study')!r}, not of {study.name!r} "
                         f"({study.path}): give the results file of this study (collect --out), or move that one away.")
    jobs = {job_key(job): job for job, _ in runs}
    known = Recorded(path, {})
    for record in records:
        key = record_key(record)
        if key not in jobs:
            known.unnamed[key] = record
            continue
        mine = recipe(record["config"])
        same = record.get("finished") and mine is not None and mine == recipe(jobs[key].cfg.to_dict())
        (known.records if same else known.superseded)[key] = record
    return known


def to_train(runs: list[tuple[Job, Block]], root: Path, known: Recorded) -> list[tuple[Job, Block]]:
    """The study's runs that ``run`` hands to the grid: all but those recorded in its results file with no run
    directory under ``root``; a recorded one stays when a run that is trained reads its weights."""
    def from_file(job: Job) -> bool:
        return job_key(job) in known.records and existing(root, job)[0] is None

    jobs = [job for job, _ in runs]
    needed = {p for job in jobs if not from_file(job) for p in prerequisites(job, jobs)}
    return [(job, block) for job, block in runs if not from_file(job) or job.prefix in needed]


def collect(study: Study, root: Path, out: Path) -> int:
    """Write the results file of the study's finished runs under ``root`` (the newest of a run named twice), with
    the records of ``out`` (if there) that stand for a run not under ``root`` or that no job names now
    (``recorded``): nothing recorded is dropped."""
    runs = expand(study, root)
    found = finished_records(root)
    kept = recorded(study, runs, out)
    keys = [job_key(job) for job, _ in runs]
    old = {**kept.superseded, **kept.records}
    chosen = {k: found[k][-1] if k in found else old[k] for k in keys if k in found or k in old}
    records = sorted([*chosen.values(), *kept.unnamed.values()], key=lambda r: r["run"])
    from_file = sum(k not in found for k in chosen)
    still = {k: r for k, r in kept.superseded.items() if k not in found}
    missing = [job.prefix + "*" for (job, _), k in zip(runs, keys) if k not in chosen]
    strays = sorted(r["run"] for k, rs in found.items() if k not in set(keys) for r in rs)
    if not records:
        print(f"error: no finished run of {study.path} under {root}; run it first: python -m seqrl.study run "
              f"{study.path}{'' if root == default_root(study) else f' --runs-root {root}'}", file=sys.stderr)
        return 2
    write_results_file(out, study.name, records)
    print(f"[study] {len(chosen)} of {len(runs)} runs" + (f" and {len(kept.unnamed)} no job names now" if kept.unnamed
          else "") + f" -> {out} ({out.stat().st_size:,} bytes)"
          + (f"; {from_file} of them kept from the file as it was (no run directory under {root})" if from_file else ""))
    if still:
        print(f"[study] kept, though superseded (their config is not the study's now, and run trains them again): "
              f"{run_names(still)}")
    if kept.unnamed:
        print(f"[study] kept, though no job of the study names them now (its blocks changed since they ran; remove "
              f"them from the file by collecting into a new one with --out): {run_names(kept.unnamed)}")
    if missing:
        print(f"[study] not finished (left out): {', '.join(missing)}")
    if strays:
        print(f"[study] under {root} but not in the study (left out): {', '.join(strays)}")
    return 0


def evaluation_command(run: Path, cfg: dict[str, Any], done: RunSummary, ev: Evaluation) -> list[str]:
    """evaluate.py on the run's last checkpoint at the evaluation's targets, its rollouts and episodes, on the CPU."""
    targets = [f"{done.data['return_max']:.1f}"] if ev.targets is None else [repr(t) for t in ev.targets]
    return [sys.executable, "-m", "seqrl.cli.evaluate", str(run), "--episodes", str(cfg["eval_episodes"]),
            *(["--targets", *targets] if targets else []), "--rollout", *cfg["rollout"], "--device", "cpu",
            *ev.flags, "--json", str(run / f"{ev.name}_eval.json.tmp")]


def evaluate_run(run: Path, ev: Evaluation, children: Children) -> int:
    """Evaluate one finished run (one thread) as one of ``children``; its ``<name>_eval.json`` appears only when
    evaluate.py succeeded (0; None: the study is stopping and it was not started)."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    done = RunSummary.read(run)
    assert done is not None  # pending_evaluations lists finished runs only
    print(f"[study] evaluate {run.name}: {ev.name}", flush=True)
    with open(run / f"{ev.name}_eval.log", "w") as log:
        rc = children.run(f"{run.name} {ev.name}", evaluation_command(run, cfg, done, ev), log,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if rc is None:
        return 0
    if rc == 0:
        (run / f"{ev.name}_eval.json.tmp").replace(run / f"{ev.name}_eval.json")
    else:
        print(f"[study] FAILED (exit {rc}, see {ev.name}_eval.log): evaluate {run.name} {ev.name}", file=sys.stderr)
    return rc


def pending_evaluations(runs: list[tuple[Job, Block]], root: Path) -> list[tuple[Path, Evaluation]]:
    """(run, evaluation) for each finished run with targets and weights that lacks a block's evaluation."""
    todo = []
    for job, block in runs:
        path, finished = existing(root, job)
        if not (finished and block.evaluate and (path / "last.pt").is_file()):
            continue
        done = RunSummary.read(path)
        if done is not None and done.targets:  # BC takes no target
            todo += [(path, ev) for ev in block.evaluate if not (path / f"{ev.name}_eval.json").is_file()]
    return todo


def run_study(study: Study, root: Path, parallel: int, until: dt.datetime | None,
              slurm: SlurmResources | None = None, threads: int | None = None,
              patterns: list[str] | None = None) -> int:
    """Train the study's runs (those matching ``patterns``, see ``only``; ``seqrl.grid``; with ``slurm``, submit
    them and return), then its evaluations of the finished runs; 0 unless something failed."""
    runs = expand(study, root)
    known = recorded(study, runs)  # of all the study's runs: a record --only leaves out is not unnamed
    runs = only(runs, patterns, study)
    print(f"[study] {study.name}: {len(runs)} runs ({study.order}) into {root}"
          + (f" (--only {' '.join(patterns)})" if patterns else ""), flush=True)
    planned, runs = len(runs), to_train(runs, root, known)
    if planned > len(runs):
        print(f"[study] {planned - len(runs)} of them recorded in {known.path} with no run directory here: not "
              "trained again", flush=True)
    if known.superseded:
        print(f"[study] {len(known.superseded)} record(s) of {known.path} superseded (their config is not the "
              f"study's now): trained again ({run_names(known.superseded)})", flush=True)
    then = f"Then: python -m seqrl.study collect {study.path}" + (
        "" if root == default_root(study) else f" --runs-root {root}")
    if not runs:
        print(f"[study] nothing to train. {then}", flush=True)
        return 0
    if slurm is not None and any(block.evaluate for _, block in runs):
        then = "the blocks' evaluations are made by this run command once the runs are finished. " + then
    rc = launch([job for job, _ in runs], root, parallel, until, [], then, slurm, threads)
    if rc > 128:  # stopped by a signal (seqrl.core.command): no evaluations start
        return rc
    todo = pending_evaluations(runs, root.resolve())
    if not todo:
        return rc
    print(f"[study] {len(todo)} evaluation(s), {parallel} at a time", flush=True)
    children, pool = Children(), ThreadPoolExecutor(parallel)
    try:
        with stop_on_signals():
            codes = list(pool.map(lambda t: evaluate_run(*t, children), todo))
    except KeyboardInterrupt as e:
        with signals_ignored():  # a second signal does not leave an evaluation behind
            stopped = children.stop()
            pool.shutdown(wait=True, cancel_futures=True)
        stop = stopped_by(e)
        print(f"[study] stopped by {stop.name} during the evaluations: {len(stopped)} stopped unwritten "
              f"({', '.join(stopped) or 'none'}), the finished ones kept. Run the same command again for the rest.",
              file=sys.stderr, flush=True)
        return stop.exit_status
    pool.shutdown()
    return rc or next((c for c in codes if c), 0)


def plan(study: Study, root: Path, patterns: list[str] | None = None) -> None:
    """Print the study's runs (those matching ``patterns``) in order, each with its state under ``root``."""
    print(f"{study.name}: {study.description}\n")
    runs = expand(study, root)
    known = recorded(study, runs)
    runs = only(runs, patterns, study)
    states = []
    for job, block in runs:
        path, finished = existing(root, job) if root.is_dir() else (None, False)
        state = ("finished" if finished else "started" if path is not None
                 else "recorded" if job_key(job) in known.records else "to run")
        states.append(state)
        evals = "".join(f" +{ev.name}" for ev in block.evaluate)
        print(f"  {state:8}  {job.prefix}*  {' '.join(job.extra)}{evals}")
    counts = {s: states.count(s) for s in ("finished", "recorded", "started", "to run")}
    print(f"\n{len(runs)} runs under {root}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + (f" (recorded: in {known.path}, not trained again)" if counts["recorded"] else ""))
    if known.superseded:
        print(f"superseded in {known.path} (their config is not the study's now; run trains them again): "
              + run_names(known.superseded))
    if known.unnamed:
        print(f"in {known.path} but named by no job of the study now (kept by collect): {run_names(known.unnamed)}")


def default_root(study: Study) -> Path:
    """``runs/studies/<name>``: where a study's runs go unless ``--runs-root`` says otherwise."""
    return Path("runs") / "studies" / study.name


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m seqrl.study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="{plan,run,status,collect}")
    for name, text in (("plan", "list the study's runs in order and which are finished under the runs root"),
                       ("run", "train the study's runs (resuming; finished runs skipped), then its evaluations"),
                       ("status", "say which runs submitted to Slurm (run --launcher slurm) are queued, running, "
                                  "finished or failed"),
                       ("collect", "write the study's results file from its finished runs")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("study", type=Path, help="the study file (studies/<name>.yaml)")
        p.add_argument("--runs-root", type=Path, default=None,
                       help="folder of the study's run directories (default: runs/studies/<name>)")
        if name in ("plan", "run"):
            p.add_argument("--only", nargs="+", default=None, metavar="PATTERN",
                           help="only the runs whose names match one of these shell patterns, e.g. '*__iql__*' "
                                "or 'hopper__medium__*' (quoted; default: all the study's runs)")
        if name == "run":
            p.add_argument("--jobs", type=int, default=None,
                           help="parallel training processes (local launcher; default 1), each with cores / jobs "
                                "threads unless --threads or its flags say")
            p.add_argument("--threads", type=int, default=None, metavar="N",
                           help="torch threads of each training process (local launcher; default: the cores this "
                                "process may use divided by --jobs, e.g. 1 with --jobs 2 on 2 cores); a run whose "
                                "config sets threads keeps its own")
            p.add_argument("--until", default=None, metavar="HH:MM|+MIN",
                           help="start a run only if it is expected to finish by then (as seqrl.grid --until); a "
                                "later run command starts the rest")
            add_launcher_flags(p)
        if name == "collect":
            p.add_argument("--out", type=Path, default=None,
                           help="the results file to write (default: beside the study file, <name>.jsonl.gz)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(lambda: command(args), lambda stop: f"[study] stopped by {stop.name}; what it had finished is "
                       "kept (a results file is written whole or not at all). Run the same command again.")


def command(args: argparse.Namespace) -> int:
    """What ``args`` ask of their study: plan, status, collect or run."""
    study = load_study(args.study)
    root = args.runs_root or default_root(study)
    if args.command == "plan":
        plan(study, root, args.only)
        return 0
    if args.command == "status":
        return print_status(root)
    if args.command == "collect":
        out = args.out or study.results_file
        if not out.name.endswith(SUFFIX):
            raise SeqRLError(f"--out {out}: a results file's name ends in {SUFFIX}.")
        return collect(study, root, out)
    slurm = check_launcher(args)
    jobs = 1 if args.jobs is None else args.jobs
    if jobs < 1:
        raise SeqRLError(f"--jobs {args.jobs}: give 1 or more.")
    if args.threads is not None and (args.threads < 1 or slurm is not None):
        raise SeqRLError(f"--threads {args.threads}: give 1 or more." if slurm is None else
                         "--threads is for the local launcher; under Slurm a run's threads are --cpus-per-task.")
    until = None if args.until is None else parse_until(args.until, dt.datetime.now())
    return run_study(study, root, jobs, until, slurm, args.threads, args.only)


if __name__ == "__main__":
    sys.exit(main())

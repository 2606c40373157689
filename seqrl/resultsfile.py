"""A study's results file: one gzip JSON-lines file holding what its runs measured, without weights or logs.

    studies/<study>.jsonl.gz    line 1: the header {"format": "seqrl-results", "version": 1, "study": ..., "runs": N}
                                then one line per run: its run record

A run record is what ``seqrl.results`` needs of a run directory (``run_record``), so that tables and plots
rebuild from the file exactly as from the directories:

- ``run`` (the directory's name), ``env``, ``dataset`` (as the config gave it), ``agent`` (the label of the saved config,
  ``TrainConfig.label``, when the record was made), ``seed``, ``finished`` (whether the run wrote ``done.json``);
- ``config``: the saved ``config.yaml`` as it was, and ``config_hash``, a short hash of it without the fields that
  only say which seed it is and where it lived (``HASH_IGNORES``): the runs of one config over seeds share it;
- ``params`` and ``updates_per_s`` (from ``done.json``; for a run without them, from its checkpoint and TensorBoard
  events when those are there);
- ``done``: ``done.json`` without its ``last`` and ``best`` evaluations, which are copies of ``evals`` entries (the
  data's score summary, the resolved dataset, the targets, updates, wall time, the machine), or null;
- ``evals``: every ``evals.jsonl`` entry as written (step, score, per (target, rollout) the per-episode returns,
  normalized scores, lengths, x displacements, fell and upside-down flags with their means, any losses);
- ``evaluations``: each ``<name>_eval.json`` that ``evaluate.py --json`` wrote into the run, by name (e.g.
  ``data_best``; ``final`` counts as the run's last evaluation).

The file is written byte-reproducibly (gzip without a time stamp), so re-collecting unchanged runs changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from seqrl.core.errors import SeqRLError
from seqrl.core.files import read_jsonl, write_atomic
from seqrl.training.config import TrainConfig
from seqrl.training.rundir import EVAL_KEYS, RunSummary, logged_median

FORMAT = "seqrl-results"
VERSION = 1
SUFFIX = ".jsonl.gz"
HASH_IGNORES = ("seed", "run_dir", "resume", "config", "overwrite", "d4rl_cache")
EVAL_SUFFIX = "_eval.json"


def is_results_file(path: Path) -> bool:
    """Whether ``path`` names a results file (by its suffix)."""
    return path.name.endswith(SUFFIX)


def config_hash(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of the config without ``HASH_IGNORES``: the same for every seed of one config."""
    kept = {k: v for k, v in config.items() if k not in HASH_IGNORES}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


def run_record(run: Path) -> dict[str, Any] | None:
    """The record of a run directory; None when it has no ``config.yaml``, no ``evals.jsonl`` or no evaluation yet,
    or a damaged file (said on stderr, as a damaged ``evals.jsonl`` line is)."""
    evals_file, cfg_file = run / "evals.jsonl", run / "config.yaml"
    if not (evals_file.is_file() and cfg_file.is_file()):
        return None
    evals = read_jsonl(evals_file, EVAL_KEYS)  # a damaged line is reported (file:line) and skipped
    if not evals:
        return None
    try:
        return _record(run, yaml.safe_load(cfg_file.read_text()), evals)
    except (ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError, SeqRLError) as e:
        print(f"[seqrl] warning: run {run} skipped: a file of it is damaged ({type(e).__name__}: {e}).", file=sys.stderr)
        return None


def _record(run: Path, cfg: dict[str, Any], evals: list[dict]) -> dict[str, Any]:
    summary = RunSummary.read(run)
    done = None if summary is None else dataclasses.asdict(summary)
    evaluations = {f.name[: -len(EVAL_SUFFIX)]: json.loads(f.read_text()) for f in sorted(run.glob("*" + EVAL_SUFFIX))}
    for name, evaluation in evaluations.items():
        if not isinstance(evaluation.get("results"), list):
            raise KeyError(f"{name}{EVAL_SUFFIX} has no results")
    params, ups = size_and_speed(run, done or {})
    return {"run": run.name, "env": cfg.get("env") or "", "dataset": cfg["dataset"], "agent": TrainConfig.from_dict(cfg, str(run / "config.yaml")).label(),
            "seed": int(cfg.get("seed", 0)), "finished": done is not None,
            "config_hash": config_hash(cfg), "config": cfg, "params": params, "updates_per_s": ups,
            "done": None if done is None else {k: v for k, v in done.items() if k not in ("last", "best")},
            "evals": evals, "evaluations": evaluations}


def size_and_speed(run: Path, done: dict) -> tuple[int | None, float | None]:
    """The model's parameter count and the run's median training updates/s: from ``done.json`` (since 2026-12),
    else from the checkpoint and the TensorBoard events, which a run without its weights and events lacks."""
    params = done["params"] if "params" in done else param_count(run)
    ups = done["updates_per_s"] if "updates_per_s" in done else logged_median(run, "charts/updates_per_s")
    return params, ups


def param_count(run: Path) -> int | None:
    """Parameters of the model in the run's ``last.pt``; None without it."""
    ckpt = run / "last.pt"
    if not ckpt.is_file():
        return None
    import torch

    return sum(v.numel() for v in torch.load(ckpt, map_location="cpu", weights_only=False)["model"].values())


def write_results_file(path: Path, study: str, records: list[dict[str, Any]]) -> None:
    """Write ``records`` under a header naming ``study``, atomically and byte-reproducibly."""
    header = {"format": FORMAT, "version": VERSION, "study": study, "runs": len(records)}
    text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in [header, *records])
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    write_atomic(path, buf.getvalue())


def read_results_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the run records of a results file; a clear ``SeqRLError`` for anything else."""
    try:
        with gzip.open(path, "rt") as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        raise SeqRLError(f"{path}: not a readable results file ({e}).") from None
    except ValueError as e:
        raise SeqRLError(f"{path}: a line is not JSON ({e}); the file is damaged.") from None
    header = lines[0] if lines and isinstance(lines[0], dict) else {}
    if header.get("format") != FORMAT:
        raise SeqRLError(f"{path}: not a seqrl results file (its first line is no {FORMAT!r} header).")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise SeqRLError(f"{path}: results file format version {header.get('version')!r}; this seqrl reads "
                         f"versions up to {VERSION}: update seqrl.")
    if header.get("runs") != len(lines) - 1:
        raise SeqRLError(f"{path}: the header says {header.get('runs')} runs, the file holds {len(lines) - 1}: "
                         "it is truncated or damaged.")
    return header, lines[1:]

"""Hand-made run directories, as train_offline.py writes them, for the results and study tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def fake_run(root: Path, backbone: str, seed: int, scores_by_step: dict[int, float], gate: str = "default",
             extra: dict | None = None, target: float | None = 3600.0, rollout: str = "window",
             episodes: dict | None = None, data: float | None = None, done: dict | None = None,
             name: str | None = None) -> Path:
    """A run directory: config.yaml, evals.jsonl, and done.json if ``data`` (the data's mean normalized score) is
    given, with ``done``'s fields. ``episodes``: extra fields of every result (length, fell...)."""
    d = root / (name or f"hopper__medium__{backbone}__{seed}__{seed}")
    d.mkdir(parents=True)
    model = {"backbone": backbone, **({"options": {"gate": gate}} if gate != "default" else {})}
    agent = {} if (extra or {}).get("agent") == "bc" else {"model": model}
    (d / "config.yaml").write_text(yaml.safe_dump({"env": "hopper", "dataset": "medium", **agent, "seed": seed,
                                                   **(extra or {})}))
    with open(d / "evals.jsonl", "w") as f:
        for step, score in scores_by_step.items():
            f.write(json.dumps({"step": step, "results": [
                {"target": target, "rollout": rollout, "normalized_mean": score, "normalized_std": 1.0, **(episodes or {})},
            ]}) + "\n")
    if data is not None:
        (d / "done.json").write_text(json.dumps({"data": {"normalized_mean": data}, **(done or {})}))
    return d

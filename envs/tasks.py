"""The locomotion tasks: which Gymnasium env evaluates D4RL data, DT's target returns, D4RL's references."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from seqrl.errors import SeqRLError


@dataclass(frozen=True)
class Task:
    name: str
    d4rl_env_id: str  # env that reproduces D4RL's v2 trajectories (see SPEC "Which env evaluates D4RL data")
    targets: tuple[float, ...]  # DT's evaluation target returns
    ref_min_score: float  # d4rl/infos.py REF_MIN_SCORE
    ref_max_score: float  # d4rl/infos.py REF_MAX_SCORE


TASKS: dict[str, Task] = {
    "hopper": Task("hopper", "Hopper-v5", (3600.0, 1800.0), -20.272305, 3234.3),
    "halfcheetah": Task("halfcheetah", "HalfCheetah-v5", (12000.0, 6000.0), -280.178953, 12135.0),
    # Walker2d-v5 changed a foot's friction; D4RL walker data is evaluated on v4.
    "walker2d": Task("walker2d", "Walker2d-v4", (5000.0, 2500.0), 1.629008, 4592.3),
}

_ALIASES = {"half_cheetah": "halfcheetah", "half-cheetah": "halfcheetah", "walker": "walker2d"}


def get_task(name: str) -> Task:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key in TASKS:
        return TASKS[key]
    close = difflib.get_close_matches(key, TASKS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SeqRLError(f"Unknown env {name!r}.{hint} Known envs: {', '.join(TASKS)}.")


def task_from_text(text: str) -> Task | None:
    """The task whose name appears in ``text`` (a file name, a Minari id, an env id), if exactly one does."""
    low = text.lower().replace("_", "").replace("-", "")
    found = [t for name, t in TASKS.items() if name in low]
    return found[0] if len(found) == 1 else None

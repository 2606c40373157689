"""The benchmark's task table, in one place: env ids, D4RL's reference scores, DT's target returns.

Data (``seqrl.datasets``), envs (``seqrl.envs``), training and tests all read their task facts here;
this module imports nothing heavy (no gymnasium, no torch), so data loading stays free of the simulator.
Adding a task is one row in ``TASKS``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from seqrl.core.errors import SeqRLError


@dataclass(frozen=True)
class Task:
    """One locomotion task."""

    name: str
    d4rl_env_id: str
    """The Gymnasium env that reproduces D4RL's v2 trajectories: D4RL's own files are evaluated in it
    (SPEC, "Which env evaluates D4RL data")."""
    maker_env_id: str
    """The env ``python -m seqrl.datasets.make`` generates new data in (Gymnasium's current MuJoCo version).
    Its datasets carry this env's spec in their metadata and are evaluated in it, like any Minari dataset."""
    targets: tuple[float, ...]
    """DT's evaluation target returns (Chen et al. 2021)."""
    ref_min_score: float
    """d4rl/infos.py REF_MIN_SCORE (a random policy's return)."""
    ref_max_score: float
    """d4rl/infos.py REF_MAX_SCORE (an expert's return)."""
    medium_band: tuple[float, float]
    """The maker's "medium" stop band: SAC's deterministic return about 1/3 of the expert reference."""

    @property
    def ref_scores(self) -> tuple[float, float]:
        """(ref_min_score, ref_max_score), the arguments of ``normalized_score``."""
        return self.ref_min_score, self.ref_max_score


def normalized_score(returns: float | Sequence[float] | np.ndarray, ref_min: float, ref_max: float) -> np.ndarray:
    """D4RL's normalization: 100 * (R - min) / (max - min) (0: a random policy, 100: an expert)."""
    return 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)


# Two env ids per task because they are two facts. D4RL's v2 data came from mujoco-py's v3 envs: Hopper and
# HalfCheetah v5 reproduce those trajectories (v5 only gives 0 instead of 1 reward on the falling step), but
# Walker2d-v5 changed a foot's friction, so D4RL's walker data is evaluated on Walker2d-v4. The maker, making
# new data, uses v5 for every task (it does not imitate D4RL's envs); its walker datasets are v5 data.
TASKS: dict[str, Task] = {
    "hopper": Task("hopper", "Hopper-v5", "Hopper-v5", (3600.0, 1800.0), -20.272305, 3234.3, (1300.0, 1900.0)),
    "halfcheetah": Task("halfcheetah", "HalfCheetah-v5", "HalfCheetah-v5", (12000.0, 6000.0), -280.178953, 12135.0,
                        (4000.0, 5400.0)),
    "walker2d": Task("walker2d", "Walker2d-v4", "Walker2d-v5", (5000.0, 2500.0), 1.629008, 4592.3, (1800.0, 3000.0)),
}

ALIASES: dict[str, str] = {"half_cheetah": "halfcheetah", "half-cheetah": "halfcheetah", "walker": "walker2d"}


def task_names() -> str:
    """``hopper, halfcheetah or walker2d``: the known tasks, for messages and help."""
    names = list(TASKS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def get_task(name: str) -> Task:
    """The task called ``name`` (case-insensitive, aliases allowed); a clear error naming the known ones."""
    key = name.lower()
    key = ALIASES.get(key, key)
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

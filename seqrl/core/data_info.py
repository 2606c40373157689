"""What an agent knows of the data it learned from: its identity, its env and how its scores are normalized.

Made by the data loaders (``seqrl.datasets``), stored in every checkpoint, read by evaluation and export, so
that acting needs no data loading."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .errors import SeqRLError
from .tasks import normalized_score


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset's own facts: where it came from, its env, how its scores are normalized (stored in checkpoints).

    Per-dataset values only (read from the data or, for D4RL files, copied from ``seqrl.core.tasks`` at load);
    a run that evaluates elsewhere (``--eval-env``) says so itself and leaves this untouched."""

    name: str  # e.g. "local/hopper/medium-v0" or "hopper-medium-v2"
    source: str  # "minari" or "d4rl"
    location: str  # the path it was read from
    task: str  # "hopper", "halfcheetah", "walker2d" (or "" if unknown)
    env_id: str  # the Gymnasium env the data belongs to, e.g. "Hopper-v5" (Minari: its env spec's id)
    env_spec_json: str = ""  # full Gymnasium EnvSpec (Minari metadata), if any
    ref_min_score: float | None = None  # Minari: its metadata's; D4RL: the task's (seqrl.core.tasks)
    ref_max_score: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def require_reference(self) -> None:
        """Fail early (before training) when scores could not be normalized."""
        if self.ref_min_score is None or self.ref_max_score is None:
            raise SeqRLError(
                f"Dataset {self.name!r} has no reference scores (ref_min_score/ref_max_score), so its "
                "returns cannot be normalized. Add them to the dataset's metadata (Minari: pass "
                "ref_min_score/ref_max_score when creating it)."
            )

    def normalized_score(self, returns: Sequence[float] | np.ndarray) -> np.ndarray:
        """D4RL normalization: 100 * (R - min) / (max - min)."""
        self.require_reference()
        return normalized_score(returns, self.ref_min_score, self.ref_max_score)

"""The training batch every agent kind learns from: a container of tensors, made by the data's window sampler
(``seqrl.datasets.sampler``) and read by the models, so that neither needs the other."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class WindowBatch:
    """B windows of K steps, padded on the right."""

    rtg: torch.Tensor  # (B, K, 1) returns-to-go / rtg_scale
    states: torch.Tensor  # (B, K, obs_dim) normalized
    actions: torch.Tensor  # (B, K, act_dim)
    timesteps: torch.Tensor  # (B, K) int64, step index within the episode
    mask: torch.Tensor  # (B, K) bool, False on padding
    # the transitions, for the agents that learn a value (sampled only for them; None otherwise):
    rewards: torch.Tensor | None = None  # (B, K) r_t times the data's reward scale
    next_states: torch.Tensor | None = None  # (B, K, obs_dim) normalized s_{t+1} (0 where the episode ends)
    terminals: torch.Tensor | None = None  # (B, K) bool: s_t's action ended the episode by termination (no bootstrap)
    td_mask: torch.Tensor | None = None  # (B, K) bool: a transition to learn from (mask, and s_{t+1} known or terminal)

    def to(self, device: torch.device | str) -> WindowBatch:
        return WindowBatch(*(None if (v := getattr(self, f.name)) is None else v.to(device, non_blocking=True)
                             for f in fields(self)))

    def rows(self, start: int, stop: int) -> WindowBatch:
        """Windows ``start`` to ``stop`` (a chunk of the batch)."""
        return WindowBatch(*(None if (v := getattr(self, f.name)) is None else v[start:stop] for f in fields(self)))

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

    def to(self, device: torch.device | str) -> WindowBatch:
        return WindowBatch(*(getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)))

    def rows(self, start: int, stop: int) -> WindowBatch:
        """Windows ``start`` to ``stop`` (a chunk of the batch)."""
        return WindowBatch(*(getattr(self, f.name)[start:stop] for f in fields(self)))

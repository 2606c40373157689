"""Behaviour cloning: an MLP from the current normalized state to the action, no returns-to-go.

    a_t = tanh(W_L relu(... relu(W_1 s_t + b_1) ...) + b_L),   s_t = (o_t - mean) / std

trained by mean squared error on the dataset's (s_t, a_t) pairs. The baseline every
offline-RL table carries (e.g. D4RL, Fu et al. 2020; the "BC" rows of Chen et al. 2021):
a sequence model that does not beat it has learned nothing from the returns.
Transitions are drawn by the same window sampler as the Decision model's, with windows of
one step, so training, checkpoints, resume and evaluation share the Decision model's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from seqrl.core.batch import WindowBatch
from seqrl.core.typed import config_from_dict, config_to_dict, setting

from .model import imitation_loss

BC_ROLLOUT = "state"  # the label of a BC evaluation: it acts on the current state alone (no target, no history)


@dataclass(frozen=True)
class BCConfig:
    """The BC MLP: everything that rebuilds it but the data's sizes, which ``create`` takes. Stored in every
    checkpoint; nested in the run config (``bc:``)."""

    hidden: tuple[int, ...] = setting((256, 256), rule=(lambda v: len(v) > 0 and min(v) >= 1,
                                                          "one positive width per hidden layer (e.g. 256 256)"))
    """Hidden layer widths of the MLP (ReLU; tanh output)."""

    @property
    def context_len(self) -> int:
        """BC learns from single transitions: training windows of one step."""
        return 1

    def label(self) -> str:
        """The run's agent label."""
        return "bc"

    def create(self, obs_dim: int, act_dim: int) -> BCModel:
        """The model for data with these observation and action sizes."""
        return BCModel(self, obs_dim, act_dim)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "BC config") -> BCConfig:
        return config_from_dict(cls, values, source)


class BCModel(nn.Module):
    kind = "bc"

    def __init__(self, cfg: BCConfig, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        layers: list[nn.Module] = []
        width = obs_dim
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, act_dim), nn.Tanh())

    def forward(self, states: Tensor) -> Tensor:
        """states: (..., obs_dim) normalized -> actions (..., act_dim) in (-1, 1)."""
        return self.net(states)

    @staticmethod
    def batch_inputs(batch: WindowBatch) -> tuple[Tensor, ...]:
        """What ``forward`` takes from a training batch: the states (B, 1, obs_dim)."""
        return (batch.states,)

    def training_loss(self, batch: WindowBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The action MSE on one batch of single transitions, and what TensorBoard shows of it."""
        return imitation_loss(self, batch)


class BCPolicy:
    """Acts for N environments in lockstep on their current observations (targets and rewards unused)."""

    def __init__(self, model: BCModel, obs_mean: np.ndarray, obs_std: np.ndarray, device: torch.device | str = "cpu") -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        dtype = next(model.parameters()).dtype
        self.obs_mean = torch.as_tensor(obs_mean, dtype=dtype, device=self.device)
        self.obs_std = torch.as_tensor(obs_std, dtype=dtype, device=self.device)

    def reset(self, targets: np.ndarray) -> None:
        pass

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: (N, obs_dim) -> actions (N, act_dim)."""
        s = (torch.as_tensor(obs, dtype=self.obs_mean.dtype, device=self.device) - self.obs_mean) / self.obs_std
        return self.model(s).float().cpu().numpy()

    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None:
        pass

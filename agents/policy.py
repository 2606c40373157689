"""Acting with a trained model: returns-to-go conditioning over the model's two rollout modes.

- ``recurrent``: the backbone state is carried from the episode's first step (``DecisionModel.step``).
- ``window``: DT's scheme; re-run the last K timesteps from a fresh state (``DecisionModel.window_step``).

Both act for N environments in lockstep (N = 1 in the simple loop). The policy owns what the model does
not: observation normalization, the return-to-go scale, and after each env step R^ <- R^ - r (Chen et al.
2021); the token layout is the model's.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

from .backbones import State
from .model import DecisionModel, WindowState

Rollout = Literal["window", "recurrent"]
ROLLOUTS: tuple[Rollout, ...] = get_args(Rollout)


class SequencePolicy:
    def __init__(
        self,
        model: DecisionModel,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        rtg_scale: float,
        rollout: Rollout = "window",
        device: torch.device | str = "cpu",
    ) -> None:
        if rollout not in ROLLOUTS:
            raise ValueError(f"rollout must be one of {ROLLOUTS}, got {rollout!r}")
        self.model = model.eval()
        self.rollout = rollout
        self.device = torch.device(device)
        dtype = next(model.parameters()).dtype
        self.obs_mean = torch.as_tensor(obs_mean, dtype=dtype, device=self.device)
        self.obs_std = torch.as_tensor(obs_std, dtype=dtype, device=self.device)
        self.rtg_scale = rtg_scale
        self.dtype = dtype

    def reset(self, targets: np.ndarray) -> None:
        """Start N episodes with the given target returns (N,)."""
        n = len(targets)
        self.rtg = torch.as_tensor(np.asarray(targets, np.float64), dtype=self.dtype, device=self.device)  # (N,)
        self.t = 0
        self.prev_action = torch.zeros(n, self.model.act_dim, dtype=self.dtype, device=self.device)
        m = self.model
        self.state: State | WindowState = m.initial_state(n) if self.rollout == "recurrent" else m.initial_window(n)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: (N, obs_dim) -> actions (N, act_dim)."""
        s = (torch.as_tensor(obs, dtype=self.dtype, device=self.device) - self.obs_mean) / self.obs_std
        ts = torch.full((len(s),), self.t, dtype=torch.long, device=self.device)
        step = self.model.step if self.rollout == "recurrent" else self.model.window_step
        action, self.state = step(self.rtg / self.rtg_scale, s, self.prev_action, ts, self.state)
        self.prev_action = action
        return action.float().cpu().numpy()

    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None:
        """After the env step: R^ <- R^ - r, t <- t + 1. ``actions`` (N, act_dim), if given, replace the
        actions the policy returned as the ones taken (e.g. clipped by the env, or teacher forcing)."""
        if actions is not None:
            self.prev_action = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
        self.rtg = self.rtg - torch.as_tensor(rewards, dtype=self.dtype, device=self.device)
        self.t += 1

"""Acting with a trained model: returns-to-go conditioning over the model's two rollout modes.

- ``recurrent``: the backbone state is carried from the episode's first step (``DecisionModel.step``).
- ``window``: DT's scheme; re-run the last K timesteps from a fresh state (``DecisionModel.window_step``).

Both act for N environments in lockstep (N = 1 in the simple loop). The policy owns what the model does
not: observation normalization, the return-to-go scale, and after each env step R^ <- R^ - r (Chen et al.
2021); the token layout is the model's.

A model that selects among return-to-go candidates (the value-guided agent, ``value_dt.py``: ``candidates`` C > 1)
acts for N x C rows: each episode's C candidates (its target times 1 + jitter * u, u evenly in [-1, 1]) are a
batch dimension, each with its own returns-to-go and its own backbone state; the model's ``choose`` picks one
action per episode (the critic's highest Q, as QT selects), and every candidate sees that action as taken. The
recurrent step stays O(1): C rows, never a re-run.
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
        self.candidates = int(getattr(model, "candidates", 1))  # C rows per episode (1: the target alone)
        spread = np.linspace(-1.0, 1.0, self.candidates) if self.candidates > 1 else np.zeros(1)
        self.spread = torch.as_tensor(1.0 + getattr(model, "jitter", 0.0) * spread, dtype=dtype, device=self.device)
        self.chosen = np.zeros(self.candidates, np.int64)  # how often each candidate's action was taken

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) per episode -> (N * C, ...) per candidate."""
        return x.repeat_interleave(self.candidates, dim=0) if self.candidates > 1 else x

    def chosen_shares(self) -> list[float]:
        """The share of steps each candidate's action was taken, over every step this policy acted (lowest
        target first; [] for a policy without candidates)."""
        total = self.chosen.sum()
        return [] if self.candidates == 1 or total == 0 else (self.chosen / total).tolist()

    def reset(self, targets: np.ndarray) -> None:
        """Start N episodes with the given target returns (N,)."""
        n = len(targets) * self.candidates
        rtg = torch.as_tensor(np.asarray(targets, np.float64), dtype=self.dtype, device=self.device)
        self.rtg = (rtg[:, None] * self.spread).reshape(n)  # (N * C,)
        self.t = 0
        self.prev_action = torch.zeros(n, self.model.act_dim, dtype=self.dtype, device=self.device)
        m = self.model
        self.state: State | WindowState = m.initial_state(n) if self.rollout == "recurrent" else m.initial_window(n)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: (N, obs_dim) -> actions (N, act_dim)."""
        s = self._rows((torch.as_tensor(obs, dtype=self.dtype, device=self.device) - self.obs_mean) / self.obs_std)
        ts = torch.full((len(s),), self.t, dtype=torch.long, device=self.device)
        step = self.model.step if self.rollout == "recurrent" else self.model.window_step
        action, self.state = step(self.rtg / self.rtg_scale, s, self.prev_action, ts, self.state)
        if self.candidates > 1:
            c = self.candidates
            pick = self.model.choose(s.view(-1, c, s.shape[-1]), action.view(-1, c, action.shape[-1]))  # (N,)
            self.chosen += np.bincount(pick.cpu().numpy(), minlength=c)
            action = action.view(-1, c, action.shape[-1])[torch.arange(len(pick), device=pick.device), pick]
            self.prev_action = self._rows(action)
        else:
            self.prev_action = action
        return action.float().cpu().numpy()

    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None:
        """After the env step: R^ <- R^ - r, t <- t + 1. ``actions`` (N, act_dim), if given, replace the
        actions the policy returned as the ones taken (e.g. clipped by the env, or teacher forcing)."""
        if actions is not None:
            self.prev_action = self._rows(torch.as_tensor(actions, dtype=self.dtype, device=self.device))
        self.rtg = self.rtg - self._rows(torch.as_tensor(rewards, dtype=self.dtype, device=self.device))
        self.t += 1

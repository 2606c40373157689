"""Acting with a trained model: returns-to-go conditioning and the two rollout modes.

- ``recurrent``: the backbone state is carried from the episode's first step; each
  env step feeds the new tokens (a_{t-1}, R^_t, s_t) through one forward with the
  carried state, whatever the episode length.
- ``window``: DT's scheme; re-run the last K timesteps from a fresh state.

Both act for N environments in lockstep (N = 1 in the simple loop). After each
env step R^ <- R^ - r (Chen et al. 2021).
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import torch

from seqrl.config import Rollout

from .backbones import State
from .model import DecisionModel

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
        self.k = model.cfg.context_len
        self.dtype = dtype

    def reset(self, targets: np.ndarray) -> None:
        """Start N episodes with the given target returns (N,)."""
        n = len(targets)
        self.rtg = torch.as_tensor(np.asarray(targets, np.float64), dtype=self.dtype, device=self.device)
        self.t = 0
        self.state: State = self.model.initial_state(n)
        self.prev_action: torch.Tensor | None = None
        # window mode history, each (N, <=K, .)
        self.h_rtg = torch.zeros(n, 0, 1, dtype=self.dtype, device=self.device)
        self.h_states = torch.zeros(n, 0, self.model.cfg.obs_dim, dtype=self.dtype, device=self.device)
        self.h_actions = torch.zeros(n, 0, self.model.cfg.act_dim, dtype=self.dtype, device=self.device)
        self.h_timesteps = torch.zeros(n, 0, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs: (N, obs_dim) -> actions (N, act_dim)."""
        s = (torch.as_tensor(obs, dtype=self.dtype, device=self.device) - self.obs_mean) / self.obs_std
        r = (self.rtg / self.rtg_scale)[:, None]  # (N, 1)
        ts = torch.full((len(s), 1), self.t, dtype=torch.long, device=self.device)
        if self.rollout == "recurrent":
            action = self._act_recurrent(r[:, None], s[:, None], ts)
        else:
            action = self._act_window(r[:, None], s[:, None], ts)
        self.prev_action = action
        return action.float().cpu().numpy()

    def _act_recurrent(self, r: torch.Tensor, s: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        m = self.model
        prev = None if self.prev_action is None else self.prev_action[:, None]
        h, self.state = m.backbone(m.step_tokens(r, s, ts, prev), self.state)  # (N, 2 or 3, D)
        return m.predict_action(h[:, -1])

    def _act_window(self, r: torch.Tensor, s: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        m, k = self.model, self.k
        placeholder = torch.zeros(len(s), 1, m.cfg.act_dim, dtype=self.dtype, device=self.device)
        self.h_rtg = torch.cat([self.h_rtg, r], dim=1)[:, -k:]
        self.h_states = torch.cat([self.h_states, s], dim=1)[:, -k:]
        self.h_actions = torch.cat([self.h_actions, placeholder], dim=1)[:, -k:]
        self.h_timesteps = torch.cat([self.h_timesteps, ts], dim=1)[:, -k:]
        # drop the last token (the unknown a_t): (N, 3k - 1, D), run from a fresh state
        tokens = m.interleave(self.h_rtg, self.h_states, self.h_actions, self.h_timesteps)[:, :-1]
        h, _ = m.backbone(tokens)
        action = m.predict_action(h[:, -1])
        self.h_actions[:, -1] = action
        return action

    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None:
        """After the env step: R^ <- R^ - r, t <- t + 1. ``actions`` (N, act_dim), if given, replace the
        actions the policy returned as the ones taken (e.g. clipped by the env, or teacher forcing)."""
        if actions is not None:
            taken = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
            self.prev_action = taken
            if self.rollout == "window":
                self.h_actions[:, -1] = taken
        self.rtg = self.rtg - torch.as_tensor(rewards, dtype=self.dtype, device=self.device)
        self.t += 1

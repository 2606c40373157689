"""Training windows sampled as Decision Transformer does.

DT picks a trajectory with probability proportional to its length and a start
uniformly inside it; that is the same as picking one transition uniformly from
the whole dataset, which is what we do (vectorized). A window holds up to K
steps from the start; steps past the episode's end are padding (mask False).
Padding goes on the right, so every backbone reads a window from its initial
state and padded tokens never influence real ones (the backbones are causal).
"""

from __future__ import annotations

import numpy as np
import torch

from seqrl.core.batch import WindowBatch
from seqrl.core.errors import SeqRLError

from .trajectories import TrajectoryDataset


class WindowSampler:
    def __init__(
        self,
        data: TrajectoryDataset,
        context_len: int,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        rtg_scale: float,
        max_ep_len: int,
        seed: int = 0,
        reward_scale: float | None = None,
    ) -> None:
        """``reward_scale``: also sample the transitions (rewards times it, next states, terminals; for the agents
        that learn a value), else None."""
        if context_len < 1:
            raise SeqRLError(f"context_len must be at least 1, got {context_len}.")
        self.k = context_len
        self.max_ep_len = max_ep_len
        self.states = (data.observations - obs_mean) / obs_std  # normalized once, (N, obs_dim)
        self.actions = data.actions
        self.rtg = data.returns_to_go() / rtg_scale
        n = data.num_transitions
        self.episode_of = np.repeat(np.arange(data.num_episodes), data.lengths)  # (N,)
        self.ep_start = data.starts
        self.ep_end = data.starts + data.lengths
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.reward_scale = reward_scale
        if reward_scale is not None:
            self.rewards = data.rewards * reward_scale
            last = self.ep_end - 1  # an episode's last row: its s_{t+1} is not in the data (the final observation
            self.terminal = np.zeros(n, bool)  # is not kept), so it is learned from only when terminated
            self.terminal[last[data.terminated]] = True
            self.has_next = np.ones(n, bool)
            self.has_next[last] = False

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows starting at uniformly drawn transitions (see the module docstring)."""
        return self.windows(self.rng.integers(0, self.n, size=batch_size))

    def windows(self, first: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """first: (B,) start rows -> (rows (B, K) clipped into the episode, timesteps (B, K), mask (B, K))."""
        ep = self.episode_of[first]
        rows = first[:, None] + np.arange(self.k)[None, :]
        mask = rows < self.ep_end[ep][:, None]
        rows = np.minimum(rows, self.ep_end[ep][:, None] - 1)
        timesteps = np.minimum(rows - self.ep_start[ep][:, None], self.max_ep_len - 1)
        return rows, timesteps, mask

    def gather(self, rows: np.ndarray, timesteps: np.ndarray, mask: np.ndarray) -> WindowBatch:
        m = mask[..., None]
        batch = WindowBatch(
            rtg=torch.from_numpy(np.where(m, self.rtg[rows][..., None], 0).astype(np.float32)),
            states=torch.from_numpy(np.where(m, self.states[rows], 0).astype(np.float32)),
            actions=torch.from_numpy(np.where(m, self.actions[rows], 0).astype(np.float32)),
            timesteps=torch.from_numpy(np.where(mask, timesteps, 0).astype(np.int64)),
            mask=torch.from_numpy(mask),
        )
        if self.reward_scale is None:
            return batch
        has_next = mask & self.has_next[rows]
        nxt = np.where(has_next, rows + 1, rows)  # a row without s_{t+1} reads its own (masked out, or terminal)
        batch.rewards = torch.from_numpy(np.where(mask, self.rewards[rows], 0).astype(np.float32))
        batch.next_states = torch.from_numpy(np.where(has_next[..., None], self.states[nxt], 0).astype(np.float32))
        batch.terminals = torch.from_numpy(mask & self.terminal[rows])
        batch.td_mask = torch.from_numpy(has_next | (mask & self.terminal[rows]))
        return batch

    def sample(self, batch_size: int) -> WindowBatch:
        return self.gather(*self.sample_indices(batch_size))

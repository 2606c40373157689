"""Trajectories in flat arrays: one row per transition, episodes as contiguous slices."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from seqrl.core.data_info import DatasetInfo
from seqrl.core.errors import SeqRLError


@dataclass
class TrajectoryDataset:
    """Episodes stored back to back.

    observations: (N, obs_dim) float32 -- the observation before each action
    actions:      (N, act_dim) float32
    rewards:      (N,) float32
    starts, lengths: (E,) int64 -- episode e is rows starts[e] : starts[e] + lengths[e]
    terminated:   (E,) bool -- ended by termination (else by a time limit or the data's end)
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray
    info: DatasetInfo
    _rtg: np.ndarray | None = field(default=None, repr=False)
    _identity: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_episodes(
        cls, episodes: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, bool]], info: DatasetInfo
    ) -> "TrajectoryDataset":
        """episodes: (observations (T, obs_dim), actions (T, act_dim), rewards (T,), terminated)."""
        obs, act, rew, term = [], [], [], []
        for o, a, r, d in episodes:
            if len(r) == 0:
                continue
            obs.append(np.asarray(o, np.float32))
            act.append(np.asarray(a, np.float32))
            rew.append(np.asarray(r, np.float32).reshape(-1))
            term.append(bool(d))
        if not obs:
            raise SeqRLError(f"Dataset {info.name!r} ({info.location}) holds no transitions.")
        lengths = np.array([len(r) for r in rew], dtype=np.int64)
        ds = cls(
            observations=np.concatenate(obs),
            actions=np.concatenate(act),
            rewards=np.concatenate(rew),
            starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
            lengths=lengths,
            terminated=np.array(term, dtype=bool),
            info=info,
        )
        ds.validate()
        return ds

    @classmethod
    def from_flat(
        cls,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray,
        info: DatasetInfo,
    ) -> "TrajectoryDataset":
        """D4RL layout: flat arrays; an episode ends at a step whose terminal or timeout flag is set.

        Steps after the last flag form a final (truncated) episode.
        """
        n = len(rewards)
        ends = np.flatnonzero(np.asarray(terminals, bool) | np.asarray(timeouts, bool)) + 1
        if len(ends) == 0 or ends[-1] != n:
            ends = np.append(ends, n)
        starts = np.concatenate([[0], ends[:-1]])
        term = np.asarray(terminals, bool)
        return cls.from_episodes(
            ((observations[s:e], actions[s:e], rewards[s:e], term[e - 1]) for s, e in zip(starts, ends)), info
        )

    def subset(self, episodes: np.ndarray) -> "TrajectoryDataset":
        """The episodes with these indices (in that order), as a dataset of their own (same info)."""
        episodes = np.asarray(episodes, dtype=np.int64)
        rows = np.concatenate([np.arange(self.starts[e], self.starts[e] + self.lengths[e]) for e in episodes])
        lengths = self.lengths[episodes]
        return TrajectoryDataset(
            observations=self.observations[rows], actions=self.actions[rows], rewards=self.rewards[rows],
            starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), lengths=lengths,
            terminated=self.terminated[episodes], info=self.info,
        )

    def split(self, fraction: float, seed: int) -> tuple["TrajectoryDataset", "TrajectoryDataset"]:
        """(kept, held out): ``fraction`` of the episodes (at least one, at most all but one) drawn at random
        with ``seed`` are held out; both keep the data's episode order."""
        if self.num_episodes < 2:
            raise SeqRLError(f"Dataset {self.info.name!r} has {self.num_episodes} episode: nothing to hold out "
                             "(--val-fraction needs at least 2 episodes).")
        n_out = min(max(1, round(fraction * self.num_episodes)), self.num_episodes - 1)
        out = np.zeros(self.num_episodes, dtype=bool)
        out[np.random.default_rng(seed).choice(self.num_episodes, size=n_out, replace=False)] = True
        return self.subset(np.flatnonzero(~out)), self.subset(np.flatnonzero(out))

    # ---- checks and statistics -------------------------------------------------------------
    def validate(self) -> None:
        n = len(self.rewards)
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise SeqRLError(
                f"Dataset {self.info.name!r}: observations and actions must be 2-D (steps, dim); got "
                f"{self.observations.shape} and {self.actions.shape}. Only flat Box observations are supported."
            )
        if len(self.observations) != n or len(self.actions) != n:
            raise SeqRLError(
                f"Dataset {self.info.name!r}: {len(self.observations)} observations, {len(self.actions)} "
                f"actions and {n} rewards; they must be equally many."
            )
        for key, arr in (("observations", self.observations), ("actions", self.actions), ("rewards", self.rewards)):
            bad = ~np.isfinite(arr)
            if bad.any():
                rows = np.flatnonzero(bad.reshape(n, -1).any(axis=1))
                raise SeqRLError(
                    f"Dataset {self.info.name!r} ({self.info.location}): {int(bad.sum())} NaN/inf values in "
                    f"{key}, in {len(rows)} transitions (first at transition {rows[0]}). Clean or regenerate it."
                )

    def identity(self) -> dict[str, Any]:
        """What tells this data from other data under the same name: its name and location, its size and a
        fingerprint of its contents (SHA-256 of the observations, actions, rewards and episode lengths, 16 hex
        digits). Stored in training checkpoints; ``--resume`` compares it."""
        if self._identity is None:
            digest = hashlib.sha256()
            for arr in (self.observations, self.actions, self.rewards, self.lengths):
                digest.update(np.ascontiguousarray(arr).tobytes())
            self._identity = {"name": self.info.name, "location": self.info.location, "episodes": self.num_episodes,
                              "transitions": self.num_transitions, "fingerprint": digest.hexdigest()[:16]}
        return self._identity

    def check_context(self, context_len: int) -> None:
        """A training window of K steps must fit in at least one episode."""
        longest = int(self.lengths.max())
        if context_len > longest:
            raise SeqRLError(
                f"--context-len {context_len} is longer than every episode of {self.info.name!r} (the longest "
                f"has {longest} steps): every window would be mostly padding. Use --context-len {longest} or less."
            )

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def num_episodes(self) -> int:
        return len(self.lengths)

    @property
    def num_transitions(self) -> int:
        return len(self.rewards)

    def episode_returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.starts)

    def returns_to_go(self) -> np.ndarray:
        """(N,) float32: R^_t = sum of rewards from t to the end of t's episode (undiscounted, as DT)."""
        if self._rtg is None:
            rtg = np.empty(self.num_transitions, dtype=np.float64)
            for s, n in zip(self.starts, self.lengths):
                rtg[s : s + n] = np.cumsum(self.rewards[s : s + n][::-1], dtype=np.float64)[::-1]
            self._rtg = rtg.astype(np.float32)
        return self._rtg

    def return_quantiles(self, qs: Sequence[float]) -> np.ndarray:
        """Quantiles of the episode returns (1.0: the best episode's return), linear interpolation."""
        return np.quantile(self.episode_returns(), np.asarray(qs, np.float64))

    def score_summary(self) -> dict[str, float | int | None]:
        """Episodes, transitions, episode returns (mean, std, best) and their mean and best normalized score
        (None without reference scores): the data's own level, to compare agents with."""
        ret = self.episode_returns()
        has_ref = self.info.ref_min_score is not None and self.info.ref_max_score is not None
        norm = self.info.normalized_score(ret) if has_ref else None
        return {
            "episodes": self.num_episodes, "transitions": self.num_transitions,
            "return_mean": float(ret.mean()), "return_std": float(ret.std()), "return_max": float(ret.max()),
            "normalized_mean": None if norm is None else float(norm.mean()),
            "normalized_max": None if norm is None else float(norm.max()),
        }

    def state_stats(self, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of observations (std + eps, as DT), float32, each (obs_dim,)."""
        obs = self.observations.astype(np.float64)
        return obs.mean(axis=0).astype(np.float32), (obs.std(axis=0) + eps).astype(np.float32)

    def summary(self) -> str:
        s = self.score_summary()
        text = (
            f"{s['episodes']} episodes, {s['transitions']:,} transitions, "
            f"return {s['return_mean']:.1f} ± {s['return_std']:.1f}, best {s['return_max']:.1f}"
        )
        if s["normalized_mean"] is not None:
            text += f" (normalized {s['normalized_mean']:.1f})"
        return text

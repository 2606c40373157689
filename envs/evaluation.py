"""Run a policy for whole episodes and collect returns."""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm


class Policy(Protocol):
    def reset(self, targets: np.ndarray) -> None: ...
    def act(self, obs: np.ndarray) -> np.ndarray: ...
    def observe(self, rewards: np.ndarray) -> None: ...


def run_episodes(
    env: gym.Env,
    policy: Policy,
    target: float,
    episodes: int,
    seed: int = 0,
    desc: str | None = None,
) -> list[float]:
    """``episodes`` episodes with reset seeds seed, seed + 1, ...; returns their undiscounted returns."""
    returns = []
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=desc is None):
        obs, _ = env.reset(seed=seed + i)
        policy.reset(np.array([target]))
        total, done = 0.0, False
        while not done:
            action = policy.act(np.asarray(obs, np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            policy.observe(np.array([reward]))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns



"""Run a policy for whole episodes and collect returns.

``run_episodes_vectorized`` runs all episodes at once in a Gymnasium vector env with one
batched policy call per env step (finished episodes keep stepping, masked, until the
last one ends); ``run_episodes`` is the plain one-env loop. For the same seeds they
give the same returns (tested).
"""

from __future__ import annotations

from typing import Callable, Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm


class Policy(Protocol):
    def reset(self, targets: np.ndarray) -> None: ...
    def act(self, obs: np.ndarray) -> np.ndarray: ...
    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None: ...


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
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=None if desc else True):
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




def run_episodes_vectorized(
    env_fn: Callable[[], gym.Env],
    policy: Policy,
    target: float,
    episodes: int,
    seed: int = 0,
    desc: str | None = None,
) -> list[float]:
    """``episodes`` episodes in lockstep, episode i reset with seed + i; returns their returns."""
    venv = gym.vector.SyncVectorEnv([env_fn] * episodes)
    try:
        obs, _ = venv.reset(seed=[seed + i for i in range(episodes)])
        policy.reset(np.full(episodes, float(target)))
        returns = np.zeros(episodes)
        done = np.zeros(episodes, dtype=bool)
        with tqdm(desc=desc, leave=False, disable=None if desc else True, unit="step") as bar:  # None: off without a TTY
            while not done.all():
                actions = policy.act(np.asarray(obs, np.float32))
                obs, rewards, terminated, truncated, _ = venv.step(actions)
                returns += np.where(done, 0.0, rewards)
                policy.observe(np.asarray(rewards, np.float64))
                done |= terminated | truncated
                bar.update(1)
                bar.set_postfix(running=int((~done).sum()))
    finally:
        venv.close()
    return returns.tolist()

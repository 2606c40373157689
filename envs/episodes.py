"""Run a policy for whole episodes and record what each episode did.

Per episode (``Episode``): its return, its length in env steps, its forward progress
(x displacement of the root body: MuJoCo ``qpos[0]`` at the end minus at the reset, in
metres; NaN for an env without MuJoCo data), whether it ended by termination (for
Hopper / Walker2d: the body became unhealthy, i.e. it fell) rather than by truncation at
the time limit, and whether it ended upside down (the root body's up axis pointing below
the horizon: HalfCheetah's way to fail, since it never terminates and, once on its back,
stays there). Together they tell "falls early" (short, fell), "stands in place" (full
length, x near 0), "flips over" (upside down, x stops growing) and "runs to the time
limit" (full length, large x) apart.

``run_episodes_vectorized`` runs all episodes at once in a Gymnasium vector env with one
batched policy call per env step (finished episodes keep stepping, masked, until the
last one ends); ``run_episodes`` is the plain one-env loop. For the same seeds they
give the same episodes (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from seqrl.core.command import raise_pending_stop


class Policy(Protocol):
    def reset(self, targets: np.ndarray) -> None: ...
    def act(self, obs: np.ndarray) -> np.ndarray: ...
    def observe(self, rewards: np.ndarray, actions: np.ndarray | None = None) -> None: ...


@dataclass(frozen=True)
class Episode:
    """What one evaluation episode did."""

    ret: float  # undiscounted return
    length: int  # env steps
    x_displacement: float  # root x at the end minus at the reset (m); NaN without MuJoCo data
    fell: bool  # ended by termination (unhealthy: fell), not by truncation at the time limit
    upside_down: bool  # ended with the root body upside down (e.g. a HalfCheetah on its back)


def x_position(env: gym.Env) -> float:
    """The root body's x coordinate (MuJoCo locomotion: ``qpos[0]``), NaN for other envs."""
    data = getattr(env.unwrapped, "data", None)
    qpos = getattr(data, "qpos", None)
    return float(qpos[0]) if qpos is not None and len(qpos) else math.nan


def upside_down(env: gym.Env) -> bool:
    """Whether the root body (MuJoCo body 1, the torso of the locomotion models) is upside down: its local z
    axis points below the horizon (world-z component of that axis, ``xmat[1][8]``, negative). For a planar
    model whose root pitches by angle a about y, that component is cos(a). False for other envs."""
    data = getattr(env.unwrapped, "data", None)
    xmat = getattr(data, "xmat", None)
    return bool(xmat is not None and len(xmat) > 1 and xmat[1][8] < 0.0)


def _targets(target: float | None, n: int) -> np.ndarray:
    """(n,) target returns; NaN for a policy that takes none (behaviour cloning)."""
    return np.full(n, math.nan if target is None else float(target))


def run_episodes(
    env: gym.Env,
    policy: Policy,
    target: float | None,
    episodes: int,
    seed: int = 0,
    desc: str | None = None,
) -> list[Episode]:
    """``episodes`` episodes with reset seeds seed, seed + 1, ..., one after the other."""
    out = []
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=None if desc else True):
        obs, _ = env.reset(seed=seed + i)
        x0 = x_position(env)
        policy.reset(_targets(target, 1))
        total, steps, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated):
            action = policy.act(np.asarray(obs, np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            raise_pending_stop()
            policy.observe(np.array([reward]))
            total += float(reward)
            steps += 1
        out.append(Episode(total, steps, x_position(env) - x0, bool(terminated), upside_down(env)))
    return out


def run_episodes_vectorized(
    env_fn: Callable[[], gym.Env],
    policy: Policy,
    target: float | None,
    episodes: int,
    seed: int = 0,
    desc: str | None = None,
) -> list[Episode]:
    """``episodes`` episodes in lockstep, episode i reset with seed + i."""
    venv = gym.vector.SyncVectorEnv([env_fn] * episodes)  # autoreset on the step after an end
    try:
        obs, _ = venv.reset(seed=[seed + i for i in range(episodes)])
        x0 = np.array([x_position(e) for e in venv.envs])
        x1 = x0.copy()
        flipped = np.zeros(episodes, dtype=bool)
        policy.reset(_targets(target, episodes))
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        fell = np.zeros(episodes, dtype=bool)
        done = np.zeros(episodes, dtype=bool)
        with tqdm(desc=desc, leave=False, disable=None if desc else True, unit="step") as bar:  # None: off without a TTY
            while not done.all():
                actions = policy.act(np.asarray(obs, np.float32))
                obs, rewards, terminated, truncated, _ = venv.step(actions)
                raise_pending_stop()
                running = ~done
                returns += np.where(running, rewards, 0.0)
                lengths += running
                policy.observe(np.asarray(rewards, np.float64))
                ended = running & (terminated | truncated)
                for i in np.flatnonzero(ended):  # read before the next step's autoreset
                    x1[i] = x_position(venv.envs[i])
                    flipped[i] = upside_down(venv.envs[i])
                fell |= ended & terminated
                done |= ended
                bar.update(1)
                bar.set_postfix(running=int((~done).sum()))
    finally:
        venv.close()
    return [Episode(float(r), int(n), float(x), bool(f), bool(u))
            for r, n, x, f, u in zip(returns, lengths, x1 - x0, fell, flipped)]

"""Shared helpers for the tests: tiny datasets from a random Hopper policy."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

REPO = Path(__file__).resolve().parents[1]
HOPPER_REF = (-20.272305, 3234.3)  # d4rl/infos.py


def random_hopper_arrays(n_episodes: int, seed: int = 0, max_steps: int = 40) -> dict[str, np.ndarray]:
    """D4RL-layout arrays from a random Hopper policy; episodes cut at ``max_steps`` as timeouts."""
    env = gym.make("Hopper-v5")
    env.action_space.seed(seed)
    keys = ("observations", "actions", "rewards", "terminals", "timeouts")
    out: dict[str, list] = {k: [] for k in keys}
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        for t in range(max_steps):
            a = env.action_space.sample()
            nxt, r, term, _, _ = env.step(a)
            out["observations"].append(obs)
            out["actions"].append(a)
            out["rewards"].append(r)
            out["terminals"].append(term)
            out["timeouts"].append(not term and t == max_steps - 1)
            obs = nxt
            if term:
                break
    env.close()
    return {k: np.asarray(v) for k, v in out.items()}


def backbone_options(backbone: str, **values):
    """The options of ``backbone`` from those of ``values`` it has (one set of values for every backbone)."""
    import dataclasses

    from seqrl.agents.backbones import options_class

    cls = options_class(backbone)
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

"""Shared helpers for the tests: tiny datasets from a random Hopper policy, loading a script by its path,
recording which envs get made."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import gymnasium as gym
import numpy as np

from seqrl.core.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]


def random_hopper_arrays(n_episodes: int, seed: int = 0, max_steps: int = 40) -> dict[str, np.ndarray]:
    """D4RL-layout arrays from a random Hopper policy; episodes cut at ``max_steps`` as timeouts."""
    env = gym.make(TASKS["hopper"].d4rl_env_id)  # the env D4RL-layout hopper files are evaluated in
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


def load_module(path: Path, name: str) -> ModuleType:
    """The Python file ``path`` imported as module ``name`` (a script outside the package, e.g. evaluate.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def record_env_ids(monkeypatch) -> list[str]:
    """From now on every ``gymnasium.make`` also appends the id it makes to the returned list."""
    made: list[str] = []
    real_make = gym.make

    def make(spec, **kwargs):
        made.append(getattr(spec, "id", spec))
        return real_make(spec, **kwargs)

    monkeypatch.setattr(gym, "make", make)
    return made


def backbone_options(backbone: str, **values):
    """The options of ``backbone`` from those of ``values`` it has (one set of values for every backbone)."""
    import dataclasses

    from seqrl.agents.backbones import options_class

    cls = options_class(backbone)
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})

"""Gymnasium envs for evaluation, built from plain facts (an env id, or a full env spec as JSON).

Which env evaluates what is decided by the callers (a dataset's own env, or a run's ``--eval-env``:
``seqrl.agents.scoring.env_maker``); this module knows no dataset type.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from seqrl.core.errors import SeqRLError
from seqrl.core.mujoco_warnings import route_mujoco_warnings


def make_env(env_id: str, env_spec_json: str = "", *, dataset_name: str = "", **kwargs) -> gym.Env:
    """The env of a full Gymnasium ``EnvSpec`` (as JSON; Minari metadata stores one) when given, else of ``env_id``.

    ``dataset_name`` (the data the env evaluates) is named in errors; ``kwargs`` go to ``gym.make``
    (e.g. ``render_mode="rgb_array"``). MuJoCo's warnings become Python warnings (``route_mujoco_warnings``)."""
    route_mujoco_warnings()
    try:
        if env_spec_json:
            return gym.make(EnvSpec.from_json(env_spec_json), **kwargs)
        if env_id:
            return gym.make(env_id, **kwargs)
    except Exception as e:  # gymnasium raises several kinds for a missing env or dependency
        raise SeqRLError(
            f"Cannot create the evaluation env {env_id!r} for dataset {dataset_name!r} "
            f"({type(e).__name__}: {e}). MuJoCo envs need `pip install gymnasium[mujoco]`."
        ) from None
    raise SeqRLError(f"Dataset {dataset_name!r} names no env to evaluate in (no env spec in its metadata).")


def check_dims(env: gym.Env, obs_dim: int, act_dim: int, dataset_name: str) -> None:
    """The dataset's observation and action sizes must be the env's."""
    env_obs = int(np.prod(env.observation_space.shape or (0,)))
    env_act = int(np.prod(env.action_space.shape or (0,)))
    if (env_obs, env_act) != (obs_dim, act_dim):
        raise SeqRLError(
            f"Dataset {dataset_name!r} has observations of size {obs_dim} and actions of size {act_dim}, "
            f"but the env {env.spec.id if env.spec else env} has {env_obs} and {env_act}. "
            "The dataset belongs to another env: pass the matching --env."
        )

"""Gymnasium envs for evaluation, built from plain facts (an env id, or a full env spec as JSON).

Which env evaluates what is decided by the callers (a dataset's own env, or a run's ``--eval-env``:
``seqrl.agents.scoring.env_maker``); this module knows no dataset type.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from seqrl.core.errors import SeqRLError
from seqrl.core.command import raise_pending_stop
from seqrl.core.mujoco_warnings import route_mujoco_warnings


def make_env(env_id: str, env_spec_json: str = "", *, dataset_name: str = "", **kwargs) -> gym.Env:
    """The env of a full Gymnasium ``EnvSpec`` (as JSON; Minari metadata stores one) when given, else of ``env_id``.

    ``dataset_name`` (the data the env evaluates) is named in errors; ``kwargs`` go to ``gym.make``
    (e.g. ``render_mode="rgb_array"``). MuJoCo's warnings become Python warnings (``route_mujoco_warnings``)."""
    route_mujoco_warnings()
    try:
        if env_spec_json or env_id:
            env = gym.make(EnvSpec.from_json(env_spec_json) if env_spec_json else env_id, **kwargs)
            raise_pending_stop()  # a signal that MuJoCo's import or model compile swallowed
            return env
    except Exception as e:  # gymnasium raises several kinds for a missing env or dependency
        raise_pending_stop()  # a signal inside MuJoCo's import surfaces as "MuJoCo is not installed": it was the signal
        raise SeqRLError(
            f"Cannot create the evaluation env {env_id!r} for dataset {dataset_name!r} "
            f"({type(e).__name__}: {e}). MuJoCo envs need `pip install gymnasium[mujoco]`."
        ) from None
    raise SeqRLError(f"Dataset {dataset_name!r} names no env to evaluate in (no env spec in its metadata).")


def check_dims(env: gym.Env, obs_dim: int, act_dim: int, dataset_name: str, chosen_by: str = "--env") -> None:
    """The dataset's observation and action sizes must be the env's; ``chosen_by`` is the flag that chose the env
    (``--env``, or ``--eval-env`` for an env given by its id), which the message asks to change."""
    env_obs = int(np.prod(env.observation_space.shape or (0,)))
    env_act = int(np.prod(env.action_space.shape or (0,)))
    if (env_obs, env_act) != (obs_dim, act_dim):
        env_id = env.spec.id if env.spec else str(env)
        fix = (f"Give an --eval-env whose observations and actions have those sizes, or drop --eval-env to evaluate "
               "in the dataset's own env." if chosen_by == "--eval-env" else
               "The dataset belongs to another env: pass the matching --env.")
        raise SeqRLError(
            f"Dataset {dataset_name!r} has observations of size {obs_dim} and actions of size {act_dim}, "
            f"but the env {env_id} ({chosen_by}) has {env_obs} and {env_act}. {fix}"
        )


def actions_outside(env: gym.Env, actions: np.ndarray, dataset_name: str) -> str:
    """One line when the data's actions leave the env's action space (by more than 0.1% of its width), which the
    policy's tanh head cannot reach: how many, how far, what to do. Empty when they stay inside."""
    space = env.action_space
    low, high = np.asarray(space.low, np.float64).reshape(-1), np.asarray(space.high, np.float64).reshape(-1)
    slack = 1e-3 * (high - low)
    out = ((actions < low - slack) | (actions > high + slack)).any(axis=1)
    if not out.any():
        return ""
    return (f"{int(out.sum()):,} of {len(actions):,} actions of dataset {dataset_name!r} ({100 * out.mean():.1f}%) lie "
            f"outside the env's action space [{low.min():g}, {high.max():g}] (they reach {actions.min():g} .. "
            f"{actions.max():g}); the policy's tanh head cannot reach them. Check the data's actions (their scale, or "
            "clip them into the space).")

"""Tiny datasets made by the tests themselves (never a real dataset): a Minari one written with
minari from a random Hopper policy, and D4RL-layout hdf5 files."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from helpers import random_hopper_arrays
from seqrl.core.tasks import TASKS


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Minari root holding ``test/hopper/medium-v0`` (random policy, 6 episodes), and an empty D4RL cache.

    Sets MINARI_DATASETS_PATH and SEQRL_D4RL_CACHE for the whole session (and for subprocesses).
    """
    import minari

    root = tmp_path_factory.mktemp("data")
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["SEQRL_D4RL_CACHE"] = str(root / "d4rl")
    from minari.data_collector import EpisodeBuffer

    env = gym.make("Hopper-v5")
    env.action_space.seed(0)
    buffers = []
    for i in range(6):
        obs, _ = env.reset(seed=i)
        o, a, r, te, tr = [obs], [], [], [], []
        done = False
        while not done:
            a.append(env.action_space.sample())
            obs, rew, term, trunc, _ = env.step(a[-1])
            o.append(obs), r.append(rew), te.append(term), tr.append(trunc)
            done = term or trunc
        buffers.append(EpisodeBuffer(id=i, seed=i, observations=np.array(o), actions=np.array(a),
                                     rewards=r, terminations=te, truncations=tr))
    minari.create_dataset_from_buffers(
        dataset_id="test/hopper/medium-v0",
        buffer=buffers,
        env=env,
        algorithm_name="random",
        ref_min_score=TASKS["hopper"].ref_min_score,
        ref_max_score=TASKS["hopper"].ref_max_score,
        description="tiny test dataset",
        author="seqrl tests",
        author_email="tests@seqrl.invalid",
        code_permalink="tests/conftest.py",
        eval_env="Hopper-v5",
    )
    env.close()
    return root


@pytest.fixture(scope="session")
def d4rl_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seqrl.datasets import write_d4rl_file

    path = tmp_path_factory.mktemp("d4rl_files") / "hopper-random-v2.hdf5"
    write_d4rl_file(path, **random_hopper_arrays(5))
    return path

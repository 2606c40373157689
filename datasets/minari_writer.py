"""Write episodes as a Minari dataset (float32, gzip-compressed hdf5) with reference scores in its metadata.

The dataset maker's writer (``python -m seqrl.datasets.make``); reading is ``minari_data.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict

import h5py
import numpy as np


class RawEpisode(TypedDict):
    """One episode as the maker collects it: T + 1 observations for T actions (Minari's layout)."""

    seed: int | None  # the reset seed, None when unknown (episodes cut from a replay buffer)
    observations: list[np.ndarray]
    actions: list[np.ndarray]
    rewards: list[float]
    terminations: list[bool]
    truncations: list[bool]


def gzip_rewrite(path: Path) -> None:
    """Rewrite an hdf5 file with every dataset gzip-compressed (h5py reads it transparently)."""
    tmp = path.with_suffix(".gz.tmp")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        def copy(group_src, group_dst):
            group_dst.attrs.update(dict(group_src.attrs))
            for k, v in group_src.items():
                if isinstance(v, h5py.Group):
                    copy(v, group_dst.create_group(k))
                else:
                    kw = {"compression": "gzip"} if v.shape else {}
                    d = group_dst.create_dataset(k, data=v[()], **kw)
                    d.attrs.update(dict(v.attrs))
        copy(src, dst)
    os.replace(tmp, path)


def write_dataset(dataset_id: str, episodes: list[RawEpisode], env_id: str, ref_scores: tuple[float, float],
                  algorithm: str, description: str, root: Path) -> Path:
    """``episodes`` as Minari dataset ``dataset_id`` under ``root`` (env ``env_id``, D4RL-style reference scores
    ``(min, max)``, made by ``algorithm``); returns its hdf5 file. Points MINARI_DATASETS_PATH at ``root``
    (minari writes there)."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    buffers = [
        EpisodeBuffer(
            id=i, seed=ep["seed"], observations=np.asarray(ep["observations"], np.float32),
            actions=np.asarray(ep["actions"], np.float32), rewards=ep["rewards"],
            terminations=ep["terminations"], truncations=ep["truncations"],
        )
        for i, ep in enumerate(episodes)
    ]
    env = gym.make(env_id)
    minari.create_dataset_from_buffers(
        dataset_id=dataset_id, buffer=buffers, env=env, eval_env=env_id, algorithm_name=algorithm,
        author="seqrl dataset maker", author_email="seqrl@users.noreply.invalid",
        code_permalink="seqrl/datasets/make.py", ref_min_score=ref_scores[0], ref_max_score=ref_scores[1],
        description=description,
    )
    env.close()
    path = root / dataset_id / "data" / "main_data.hdf5"
    gzip_rewrite(path)
    return path

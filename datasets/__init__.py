"""Offline datasets: D4RL hdf5 files and Minari datasets as flat trajectories, and the window sampler."""

from seqrl.core.batch import WindowBatch
from seqrl.core.data_info import DatasetInfo

from .d4rl import load_d4rl_file, load_d4rl_name, write_d4rl_file
from .minari_data import load_minari
from .resolve import Resolved, resolve_dataset
from .sampler import WindowSampler
from .trajectories import TrajectoryDataset

__all__ = [
    "DatasetInfo",
    "Resolved",
    "TrajectoryDataset",
    "WindowBatch",
    "WindowSampler",
    "load_d4rl_file",
    "load_d4rl_name",
    "load_minari",
    "resolve_dataset",
    "write_d4rl_file",
]

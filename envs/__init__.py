"""Evaluation envs and the episode loop (the task table is ``seqrl.core.tasks``; datasets are not imported here)."""

from .episodes import Episode, run_episodes, run_episodes_vectorized
from .factory import actions_outside, check_dims, make_env

__all__ = ["Episode", "actions_outside", "check_dims", "make_env", "run_episodes", "run_episodes_vectorized"]

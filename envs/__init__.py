"""Evaluation envs matching the datasets, and the evaluation loop."""

from .evaluation import Episode, run_episodes, run_episodes_vectorized
from .make import check_dims, make_env
from .tasks import TASKS, Task, get_task

__all__ = ["TASKS", "Episode", "Task", "check_dims", "get_task", "make_env", "run_episodes", "run_episodes_vectorized"]

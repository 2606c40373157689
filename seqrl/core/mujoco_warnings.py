"""MuJoCo's warnings as Python warnings.

By default MuJoCo's C library prints every warning and appends it to ``MUJOCO_LOG.TXT`` in the working
directory; with MuJoCo 4, HalfCheetah's model file (its 'settotalmass' compiler attribute is deprecated) did
so for every env of every evaluation: 40 lines per evaluation in a training log, and a log file wherever the
user ran the program. Routed through Python's ``warnings``, each distinct message is shown once and can be
filtered (``-W ignore::seqrl.core.mujoco_warnings.MuJoCoWarning``).
"""

from __future__ import annotations

import sys
import warnings


class MuJoCoWarning(RuntimeWarning):
    """A warning MuJoCo's C library gave (e.g. a deprecated attribute in an env's model file, an unstable step)."""


def _warn_from_mujoco(message: str) -> None:
    try:
        warnings.warn(f"MuJoCo: {message}", MuJoCoWarning, stacklevel=2)
    except KeyboardInterrupt:  # a signal here may not cross MuJoCo's C code: raised again after it (raise_pending_stop)
        pass
    except Exception:  # a filter set to "error": an exception may not cross MuJoCo's C code (it aborts the process)
        print(f"MuJoCo warning: {message}", file=sys.stderr)


def route_mujoco_warnings() -> None:
    """From now on in this process, MuJoCo's warnings are ``MuJoCoWarning``s, unless a handler was already set
    (the user's is kept). Every env seqrl makes calls it."""
    try:
        import mujoco
    except ImportError:  # not a MuJoCo env
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_warn_from_mujoco)

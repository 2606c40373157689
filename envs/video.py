"""Record evaluation episodes to MP4 (imageio-ffmpeg) or GIF with MuJoCo's offscreen renderer.

MuJoCo renders offscreen through EGL or OSMesa, picked by ``MUJOCO_GL`` before mujoco is
imported (``choose_offscreen_gl`` sets ``egl`` if unset; evaluate.py calls it for ``--video`` only).
System packages: Debian ``libegl1`` (EGL) or ``libosmesa6`` (OSMesa, with ``MUJOCO_GL=osmesa``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from seqrl.core.errors import SeqRLError

from .episodes import Policy, run_episodes


def choose_offscreen_gl() -> None:
    """Offscreen rendering through EGL unless ``MUJOCO_GL`` already says otherwise. Call it only when frames will
    be rendered, before mujoco is imported (mujoco and PyOpenGL read the platform on import)."""
    os.environ.setdefault("MUJOCO_GL", "egl")


class FrameRecorder(gym.Wrapper):
    """Keeps ``env.render()`` after the reset and after every step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.frames = [self.env.render()]
        return out

    def step(self, action):
        out = self.env.step(action)
        self.frames.append(self.env.render())
        return out


def renderer_problem(make_rendering_env: Callable[[], gym.Env]) -> str | None:
    """None when an offscreen frame can be rendered, else what is wrong and what to install."""
    try:
        env = make_rendering_env()
        env.reset(seed=0)
        frame = env.render()
        env.close()
        if frame is None or np.asarray(frame).size == 0:
            return "the env rendered no frame"
    except Exception as e:  # mujoco raises FatalError/AttributeError/ImportError without a GL platform
        return (f"no offscreen OpenGL renderer ({type(e).__name__}: {e}). Install EGL (Debian: apt-get install libegl1) "
                f"or OSMesa (apt-get install libosmesa6, then MUJOCO_GL=osmesa); MUJOCO_GL is now "
                f"{os.environ.get('MUJOCO_GL', 'unset')!r}")
    return None


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        try:
            imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)
            return path
        except (ImportError, ValueError, RuntimeError):  # no ffmpeg backend: fall back to GIF
            path = path.with_suffix(".gif")
    imageio.mimwrite(path, frames, duration=1000 / fps, loop=0)
    return path


def record_episode(
    make_rendering_env: Callable[[], gym.Env], policy: Policy, target: float | None, seed: int, path: Path, fps: int = 30
) -> tuple[Path, float]:
    """One episode (reset seed ``seed``) rendered to ``path`` (.mp4 or .gif); returns the file and the return."""
    env = FrameRecorder(make_rendering_env())
    try:
        (episode,) = run_episodes(env, policy, target, 1, seed=seed)
    finally:
        env.close()
    if not env.frames:
        raise SeqRLError("the episode produced no frames")
    return write_video(env.frames, path, fps), episode.ret

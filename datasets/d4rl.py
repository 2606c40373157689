"""D4RL v2 hdf5 files, read with h5py (the ``d4rl`` package itself no longer installs).

Keys: observations, actions, rewards, terminals, timeouts (others ignored);
episodes end at a step flagged terminal or timeout.
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from seqrl.core.errors import SeqRLError
from seqrl.core.tasks import TASKS, Task, get_task, task_from_text, task_names

from seqrl.core.data_info import DatasetInfo

from .trajectories import TrajectoryDataset

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
LEVELS = ("random", "medium", "medium-replay", "medium-expert", "expert")
D4RL_NAME = re.compile(rf"^({'|'.join(TASKS)})-({'|'.join(map(re.escape, LEVELS))})-v2$")  # hopper-medium-v2
# D4RL's public location of the gym_mujoco_v2 files; SEQRL_D4RL_URL overrides it (a mirror, or file:// in tests).
D4RL_BASE_URL = "http://rail.eecs.berkeley.edu/datasets/offline_rl/gym_mujoco_v2"


def default_cache_dir() -> Path:
    return Path(os.environ.get("SEQRL_D4RL_CACHE", Path.home() / ".cache" / "seqrl" / "d4rl"))


def d4rl_names() -> list[str]:
    """Every D4RL v2 locomotion name this loader knows (3 tasks x 5 levels)."""
    return [d4rl_name(t, lv) for t in TASKS for lv in LEVELS]


def d4rl_name(task: str, level: str) -> str:
    return f"{task}-{level}-v2"


def is_d4rl_benchmark(info: DatasetInfo) -> bool:
    """Whether the data is one of D4RL's own v2 datasets: read as D4RL, under a D4RL name (``hopper-medium-v2``)
    or D4RL's file name (``hopper_medium-v2.hdf5``); not a local dataset made with D4RL's recipe."""
    task, _, rest = info.name.partition("_")
    return info.source == "d4rl" and bool(D4RL_NAME.match(info.name) or D4RL_NAME.match(f"{task}-{rest.replace('_', '-')}"))


def d4rl_url(name: str) -> str:
    """hopper-medium-replay-v2 -> <base>/hopper_medium_replay-v2.hdf5 (D4RL's file naming)."""
    task, rest = name.split("-", 1)
    level = rest[: -len("-v2")].replace("-", "_")
    base = os.environ.get("SEQRL_D4RL_URL", D4RL_BASE_URL).rstrip("/")
    return f"{base}/{task}_{level}-v2.hdf5"


def load_d4rl_file(path: str | Path, task: Task | None = None, name: str | None = None) -> TrajectoryDataset:
    """Read a D4RL-layout hdf5 file. ``task`` defaults to the one named in the file name."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SeqRLError(f"Dataset file {str(path)!r} does not exist. Check the path passed with --dataset.")
    named = task_from_text(path.name)
    if task is not None and named is not None and named != task:
        raise SeqRLError(f"The D4RL file {str(path)!r} is named as {named.name} data, but --env is {task.name}: pass "
                         f"--env {named.name} (or, if the file's name is wrong, rename it).")
    task = task or named
    if task is None:
        raise SeqRLError(
            f"Cannot tell which env the D4RL file {str(path)!r} belongs to from its name; pass --env "
            f"({task_names()})."
        )
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED_KEYS if k not in f]
            if missing:
                raise SeqRLError(
                    f"{str(path)!r} is not a D4RL-layout dataset: it lacks the key(s) {', '.join(missing)} "
                    f"(found: {', '.join(sorted(f.keys()))}). D4RL files hold {', '.join(REQUIRED_KEYS)}."
                )
            arrays = {k: f[k][()] for k in REQUIRED_KEYS}
    except OSError as e:
        raise SeqRLError(
            f"Cannot read {str(path)!r} as an HDF5 file ({e}). The file may be corrupt or a partial "
            "download: delete it and fetch it again."
        ) from None
    info = DatasetInfo(
        name=name or path.stem,
        source="d4rl",
        location=str(path),
        task=task.name,
        env_id=task.d4rl_env_id,  # D4RL's own data: the env that reproduces it
        ref_min_score=task.ref_min_score,
        ref_max_score=task.ref_max_score,
    )
    obs = arrays["observations"]
    if len(obs) == 0:
        raise SeqRLError(f"Dataset {info.name!r} ({path}) holds no transitions.")
    return TrajectoryDataset.from_flat(
        obs.reshape(len(obs), -1),
        arrays["actions"].reshape(len(obs), -1),
        arrays["rewards"].reshape(-1),
        arrays["terminals"].reshape(-1),
        arrays["timeouts"].reshape(-1),
        info,
    )


def download(url: str, dest: Path) -> None:
    """Fetch ``url`` into ``dest`` with a progress bar; a partial download never becomes ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, os.fdopen(fd, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            got = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        if total is not None and got != total:
            raise OSError(f"download cut short: {got} of {total} bytes")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_d4rl_name(name: str, cache_dir: Path, allow_download: bool = True) -> TrajectoryDataset:
    """``hopper-medium-v2`` etc.: from ``cache_dir``, downloading it there once if allowed."""
    task = get_task(name.split("-", 1)[0])
    path = cache_dir / f"{name}.hdf5"
    if not path.is_file():
        url = d4rl_url(name)
        where = (
            f"Put the file at {path} (or pass --dataset /path/to/{task.name}_..-v2.hdf5), or use a Minari "
            "dataset (set MINARI_DATASETS_PATH and pass its id)."
        )
        if not allow_download:
            raise SeqRLError(f"D4RL dataset {name!r} is not in the cache {cache_dir} and downloading is off. {where}")
        print(f"[seqrl] downloading {name} from {url} into {cache_dir}")
        try:
            download(url, path)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise SeqRLError(f"D4RL dataset {name!r} is not cached and could not be downloaded from {url} ({reason}). {where}") from None
    return load_d4rl_file(path, task, name=name)


def write_d4rl_file(path: Path, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                    terminals: np.ndarray, timeouts: np.ndarray) -> None:
    """Write arrays in D4RL's layout (for tests and converters)."""
    with h5py.File(path, "w") as f:
        f["observations"] = np.asarray(observations, np.float32)
        f["actions"] = np.asarray(actions, np.float32)
        f["rewards"] = np.asarray(rewards, np.float32)
        f["terminals"] = np.asarray(terminals, bool)
        f["timeouts"] = np.asarray(timeouts, bool)

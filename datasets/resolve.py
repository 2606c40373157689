"""Turn ``--env`` / ``--dataset`` into a dataset, and say what was chosen and from where.

``--dataset`` accepts, in this order:
1. a path to a D4RL-layout hdf5 file;
2. a D4RL name such as ``hopper-medium-v2`` (from the cache dir; downloaded once when online);
3. a Minari id such as ``mujoco/hopper/medium-v0`` or ``local/hopper/medium-v0``;
4. a level shorthand (``medium``, ``medium-replay``, ...) with ``--env``: a local copy if one is
   found (the D4RL file in the cache, else a local Minari dataset ``*/<env>/<level>-v*``), else
   D4RL's ``<env>-<level>-v2``, the benchmark the published tables use. Minari's own
   ``mujoco/<env>/medium`` policies are near expert, so they are only picked when named.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from seqrl.core.errors import SeqRLError
from seqrl.core.tasks import get_task, task_names

from .d4rl import D4RL_NAME, LEVELS, d4rl_name, d4rl_names, load_d4rl_file, load_d4rl_name
from .minari_data import load_minari, local_minari_ids, minari_root
from .trajectories import TrajectoryDataset


@dataclass
class Resolved:
    data: TrajectoryDataset
    how: str  # one line: what the request resolved to and from where


def _version(dataset_id: str) -> int:
    m = re.search(r"-v(\d+)$", dataset_id)
    return int(m.group(1)) if m else -1


def local_minari_match(task: str, level: str) -> list[str]:
    """Local Minari ids ``<namespace>/<task>/<level>-v<N>``; D4RL-recipe namespaces before ``mujoco``."""
    pat = re.compile(rf"^(.+/)?{re.escape(task)}/{re.escape(level)}-v\d+$")
    ids = [i for i in local_minari_ids() if pat.match(i)]
    return sorted(ids, key=lambda i: (i.startswith("mujoco/"), -_version(i), i))


def resolve_dataset(
    dataset: str, env: str | None, cache_dir: Path, allow_download: bool = True
) -> Resolved:
    task = get_task(env) if env else None
    path = Path(dataset).expanduser()
    if dataset.endswith((".hdf5", ".h5")) or path.is_file():
        data = load_d4rl_file(path, task)
        return Resolved(data, f"D4RL-layout file {path}")
    if D4RL_NAME.match(dataset):
        data = load_d4rl_name(dataset, cache_dir, allow_download)
        return Resolved(data, f"D4RL {dataset} from {data.info.location}")
    if "/" in dataset:
        data = load_minari(dataset, allow_download)
        return Resolved(data, f"Minari {dataset} from {data.info.location}")
    if dataset in LEVELS:
        if task is None:
            raise SeqRLError(f"--dataset {dataset!r} is a level; also pass --env ({task_names()}).")
        name = d4rl_name(task.name, dataset)
        if (cache_dir / f"{name}.hdf5").is_file():
            data = load_d4rl_name(name, cache_dir, allow_download=False)
            return Resolved(data, f"{task.name}/{dataset} -> D4RL {name} (cached at {data.info.location})")
        matches = local_minari_match(task.name, dataset)
        if matches:
            data = load_minari(matches[0], allow_download=False)
            others = f"; also found {', '.join(matches[1:])}" if len(matches) > 1 else ""
            return Resolved(
                data, f"{task.name}/{dataset} -> local Minari {matches[0]} under {minari_root()}{others}"
            )
        data = load_d4rl_name(name, cache_dir, allow_download)
        return Resolved(data, f"{task.name}/{dataset} -> D4RL {name} from {data.info.location}")
    close = difflib.get_close_matches(dataset, d4rl_names() + list(LEVELS) + local_minari_ids(), n=1, cutoff=0.75)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise SeqRLError(
        f"Unknown dataset {dataset!r}.{hint} --dataset takes a path to a D4RL hdf5 file, a D4RL name "
        f"(e.g. hopper-medium-v2), a Minari id (e.g. mujoco/hopper/medium-v0), or a level "
        f"({', '.join(LEVELS)}) together with --env."
    )

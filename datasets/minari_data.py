"""Minari datasets (the maintained successor of D4RL), loaded with ``minari`` itself.

Minari stores T + 1 observations for T actions; we keep the T observations that
precede each action. Local datasets live under MINARI_DATASETS_PATH (default
~/.minari/datasets); a missing one is downloaded when allowed and online.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from seqrl.core.errors import SeqRLError
from seqrl.core.tasks import task_from_text

from seqrl.core.data_info import DatasetInfo

from .trajectories import TrajectoryDataset


def minari_root() -> Path:
    return Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))


def local_minari_ids() -> list[str]:
    """Ids of the datasets under the Minari root (read from the folder layout, no metadata parsing)."""
    root = minari_root()
    if not root.is_dir():
        return []
    ids = (p.parent.parent.relative_to(root) for p in root.glob("**/data/main_data.hdf5"))
    return sorted(str(i) for i in ids if not any(part.startswith(".") for part in i.parts))  # not a maker's staging


def load_minari(dataset_id: str, allow_download: bool = True) -> TrajectoryDataset:
    import minari

    root = minari_root()
    local = (root / dataset_id / "data").is_dir()
    if not local and not allow_download:
        raise SeqRLError(
            f"Minari dataset {dataset_id!r} is not under {root} and downloading is off. Set "
            "MINARI_DATASETS_PATH to the folder that holds it, or allow downloading."
        )
    try:
        ds = minari.load_dataset(dataset_id, download=not local)
    except Exception as e:  # minari raises many kinds on a failed download / bad id
        if local and isinstance(e, OSError):  # there, but unreadable: not a download problem
            raise unreadable(dataset_id, root, e) from None
        local_ids = local_minari_ids()
        close = difflib.get_close_matches(dataset_id, local_ids, n=1)
        have = f" Did you mean {close[0]!r}?" if close else ""
        have += f" Datasets found there: {', '.join(local_ids)}." if local_ids else " No datasets were found there."
        raise SeqRLError(
            f"Minari dataset {dataset_id!r} could not be loaded: it is not under {root} (MINARI_DATASETS_PATH)"
            f" and downloading it failed ({type(e).__name__}: {e}).{have} Check the id, go online once "
            f"(`minari download {dataset_id}`, needs minari[hf]), or point MINARI_DATASETS_PATH at a copy."
        ) from None

    try:
        return _read(ds, dataset_id, root)
    except OSError as e:  # h5py: a truncated or damaged file
        raise unreadable(dataset_id, root, e) from None


def unreadable(dataset_id: str, root: Path, e: OSError) -> SeqRLError:
    """The error for a local Minari dataset whose files cannot be read (truncated, damaged)."""
    where = root / dataset_id / "data" / "main_data.hdf5"
    return SeqRLError(f"Minari dataset {dataset_id!r}: cannot read {where} ({str(e).strip()[:200]}). The file may be "
                      "damaged or only partly copied: copy it again (or make the dataset again).")


def _read(ds: object, dataset_id: str, root: Path) -> TrajectoryDataset:
    """The episodes of a loaded Minari dataset, with its info."""
    meta = ds.storage.metadata
    spec = ds.spec.env_spec
    env_spec_json = spec.to_json() if spec is not None else ""
    env_id = spec.id if spec is not None else ""
    task = task_from_text(env_id or dataset_id)
    info = DatasetInfo(
        name=dataset_id,
        source="minari",
        location=str(root / dataset_id),
        task=task.name if task else "",
        env_id=env_id,
        env_spec_json=env_spec_json,
        ref_min_score=_maybe_float(meta.get("ref_min_score")),
        ref_max_score=_maybe_float(meta.get("ref_max_score")),
    )
    episodes = (
        (ep.observations[:-1], ep.actions, ep.rewards, bool(ep.terminations[-1]))
        for ep in ds.iterate_episodes()
    )
    try:
        return TrajectoryDataset.from_episodes(episodes, info)
    except (TypeError, IndexError, ValueError) as e:
        raise SeqRLError(
            f"Minari dataset {dataset_id!r}: its episodes are not flat arrays ({e}); only Box observation "
            "and action spaces are supported."
        ) from None


def _maybe_float(v: object) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = json.loads(v)
    return float(v)  # type: ignore[arg-type]

"""Checkpoints hold everything needed to rebuild and run the agent without the dataset."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.datasets.trajectories import DatasetInfo
from seqrl.errors import SeqRLError

from .kinds import Model, build_model

# 2: minGRU/minLSTM input projections fused into one ``in_proj``.
# 3: the backbone's options under ``model_config["backbone_options"]`` (format <= 2: flat fields; read by
#    ``ModelConfig.from_dict``).
CHECKPOINT_FORMAT = 3


def _migrate_v1(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Format 1 kept minGRU/minLSTM's forget gate (``forget.lin``, ``forget.refine_lin``) and the rest of the
    input projection (``to_hidden`` / ``to_input_hidden``) as separate layers; format 2 stacks them, in that
    order, into ``in_proj``."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".forget.lin.weight")]:
        prefix = key[: -len("forget.lin.weight")]
        for kind in ("weight", "bias"):
            parts = [f"{prefix}forget.lin.{kind}", f"{prefix}forget.refine_lin.{kind}",
                     f"{prefix}to_hidden.{kind}", f"{prefix}to_input_hidden.{kind}"]
            present = [p for p in parts if p in state]
            out[f"{prefix}in_proj.{kind}"] = torch.cat([state[p] for p in present], dim=0)
            for p in present:
                del out[p]
    return out


@dataclass
class AgentBundle:
    """A model with what acting needs: state normalization, RTG scale, targets, the dataset's info, and the env
    the run evaluates in when it is not the dataset's own (``--eval-env``)."""

    model: Model  # DecisionModel or BCModel
    obs_mean: np.ndarray
    obs_std: np.ndarray
    rtg_scale: float
    targets: list[float]
    dataset: DatasetInfo
    step: int
    config: dict[str, Any]
    eval_env: str | None = None  # --eval-env: a Gymnasium id to act in instead of the dataset's env

    @property
    def env_id(self) -> str:
        """The env the agent is evaluated in: ``eval_env``, else the dataset's."""
        return self.eval_env or self.dataset.env_id


def save_checkpoint(path: Path, bundle: AgentBundle, extra: dict[str, Any] | None = None) -> None:
    """Write atomically (temp file + rename): a crash mid-write keeps the previous file."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "agent": bundle.model.kind,  # absent in older checkpoints: "dt"
        "model": bundle.model.state_dict(),
        "model_config": bundle.model.cfg.to_dict(),
        "obs_mean": bundle.obs_mean,
        "obs_std": bundle.obs_std,
        "rtg_scale": bundle.rtg_scale,
        "targets": list(bundle.targets),
        "dataset": bundle.dataset.to_dict(),  # the dataset's own info, never rewritten by --eval-env
        "eval_env": bundle.eval_env,
        "step": bundle.step,
        "config": bundle.config,
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_checkpoint(run: Path, which: str = "last") -> Path:
    """A run directory (its ``last.pt`` or ``best.pt``) or a checkpoint file."""
    if run.is_file():
        return run
    if not run.is_dir():
        raise SeqRLError(f"{str(run)!r} is neither a run directory nor a checkpoint file.")
    path = run / f"{which}.pt"
    if not path.is_file():
        found = sorted(p.name for p in run.glob("*.pt"))
        raise SeqRLError(
            f"No {which}.pt in {str(run)!r} (found: {', '.join(found) or 'no checkpoints'}). "
            "Is this a run directory written by train_offline.py, and did its first evaluation finish?"
        )
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[AgentBundle, dict[str, Any]]:
    """Rebuild the agent from a checkpoint alone; also returns the raw payload (optimizer etc.)."""
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:
        raise SeqRLError(f"Cannot read checkpoint {str(path)!r} ({type(e).__name__}: {e}); it may be corrupt.") from None
    if not isinstance(payload, dict) or payload.get("format") not in range(1, CHECKPOINT_FORMAT + 1):
        raise SeqRLError(f"{str(path)!r} is not a seqrl checkpoint (formats 1-{CHECKPOINT_FORMAT}).")
    if payload["format"] == 1:
        payload["model"] = _migrate_v1(payload["model"])
    model = build_model(payload.get("agent", "dt"), payload["model_config"]).to(device)
    model.load_state_dict(payload["model"])
    bundle = AgentBundle(
        model=model,
        obs_mean=np.asarray(payload["obs_mean"]),
        obs_std=np.asarray(payload["obs_std"]),
        rtg_scale=float(payload["rtg_scale"]),
        targets=list(payload["targets"]),
        dataset=DatasetInfo(**payload["dataset"]),
        step=int(payload["step"]),
        config=payload["config"],
        # checkpoints written before "eval_env" was saved keep it in their config only
        eval_env=payload["eval_env"] if "eval_env" in payload else payload["config"].get("eval_env"),
    )
    return bundle, payload

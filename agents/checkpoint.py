"""Checkpoints hold everything needed to rebuild and run the agent without the dataset: the agent's kind, its
model config and the data's sizes (``Config.from_dict(...).create(obs_dim, act_dim)``), the weights, the state
normalization, the targets and the data's identity. A training checkpoint adds the training state beside them
(``seqrl.training``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.core.data_info import DatasetInfo
from seqrl.core.errors import SeqRLError
from seqrl.core.files import write_atomic

from .kinds import Model, build_model

CHECKPOINT_FORMAT = 4  # 4: model config without the data's sizes, which are stored beside it


@dataclass
class AgentBundle:
    """A model with what acting needs: state normalization, RTG scale, targets, the dataset's info, and the env
    the run evaluates in when it is not the dataset's own (``--eval-env``)."""

    model: Model  # DecisionModel (or its value-guided kind), BCModel or IQLModel
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
    """Write atomically (temp file + rename): a crash or a full disk mid-write keeps the previous file."""
    model = bundle.model
    payload = {
        "format": CHECKPOINT_FORMAT,
        "agent": model.kind,
        "model": model.state_dict(),
        "model_config": getattr(model, "agent_config", model.cfg).to_dict(),  # a kind of several groups: all of them
        "dims": {"obs_dim": model.obs_dim, "act_dim": model.act_dim},
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
    buf = io.BytesIO()  # serialized in memory, then written as plain bytes: a full disk is an OSError naming the file
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())


def non_finite(state: dict[str, Any]) -> list[str]:
    """The names of the floating-point tensors of a ``state_dict`` holding a NaN or an infinity (a diverged model)."""
    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


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
    if not isinstance(payload, dict) or "format" not in payload:
        raise SeqRLError(f"{str(path)!r} is not a seqrl checkpoint.")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise SeqRLError(f"{str(path)!r} is a checkpoint of format {payload['format']}, written by another version of "
                         f"seqrl; this one reads format {CHECKPOINT_FORMAT}. Evaluate or export it with the version that "
                         "wrote it (its run's config.yaml and evals.jsonl stay readable by seqrl.results).")
    bad = non_finite(payload["model"])
    if bad:
        raise SeqRLError(f"{str(path)!r} holds weights that are not finite (NaN or infinity in {', '.join(bad[:3])}"
                         f"{'...' if len(bad) > 3 else ''}): its run diverged. Use a checkpoint from before (best.pt, or "
                         "checkpoints/step_<N>.pt with --keep-checkpoints), or train again with a lower --lr.")
    model = build_model(payload["agent"], payload["model_config"], **payload["dims"]).to(device)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as e:
        raise SeqRLError(f"{str(path)!r}: its weights do not fit the model its own config describes "
                         f"({str(e).splitlines()[0][:200]}); it is damaged.") from None
    bundle = AgentBundle(
        model=model,
        obs_mean=np.asarray(payload["obs_mean"]),
        obs_std=np.asarray(payload["obs_std"]),
        rtg_scale=float(payload["rtg_scale"]),
        targets=list(payload["targets"]),
        dataset=DatasetInfo(**payload["dataset"]),
        step=int(payload["step"]),
        config=payload["config"],
        eval_env=payload["eval_env"],
    )
    return bundle, payload

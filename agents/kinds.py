"""The kinds of agent (``--agent``): which model, model config and policy each uses.

- ``dt``: the Decision model over a sequence backbone (``model.py``), acting through
  ``SequencePolicy`` in a rollout mode (window or recurrent), conditioned on a target return.
- ``bc``: behaviour cloning (``bc.py``), an MLP on the current state; one evaluation per
  round, labelled rollout ``state`` with no target.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping, Union

import numpy as np
import torch

from seqrl.config import TrainConfig
from seqrl.errors import SeqRLError

from .bc import BC_ROLLOUT, BCConfig, BCModel, BCPolicy
from .model import DecisionModel, ModelConfig
from .policy import SequencePolicy

Model = Union[DecisionModel, BCModel]
AGENTS: dict[str, tuple[type, type]] = {"dt": (DecisionModel, ModelConfig), "bc": (BCModel, BCConfig)}


def build_model(kind: str, config: Mapping[str, Any]) -> Model:
    """The model of agent ``kind`` from its config fields (``model_config``, or as stored in a checkpoint)."""
    if kind not in AGENTS:
        raise SeqRLError(f"Unknown agent kind {kind!r}: known kinds are {', '.join(AGENTS)}.")
    model_cls, cfg_cls = AGENTS[kind]
    return model_cls(cfg_cls.from_dict(config))


def model_config(cfg: TrainConfig, obs_dim: int, act_dim: int) -> dict[str, Any]:
    """The model config fields of ``cfg``'s agent for data of these sizes (same names as TrainConfig's)."""
    if cfg.agent == "bc":
        return {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": tuple(cfg.bc_hidden)}
    dims = {"obs_dim": obs_dim, "act_dim": act_dim}
    return {**dims, **{f.name: getattr(cfg, f.name) for f in fields(ModelConfig) if f.name not in dims}}


def make_policy(model: Model, obs_mean: np.ndarray, obs_std: np.ndarray, rtg_scale: float, rollout: str,
                device: torch.device | str) -> BCPolicy | SequencePolicy:
    """The policy that acts with ``model``: BC's for a BC model (rollout ``state``), else ``SequencePolicy``."""
    if isinstance(model, BCModel):
        if rollout != BC_ROLLOUT:
            raise SeqRLError(f"A BC agent acts on the current state alone (rollout {BC_ROLLOUT!r}), not {rollout!r}.")
        return BCPolicy(model, obs_mean, obs_std, device)
    return SequencePolicy(model, obs_mean, obs_std, rtg_scale, rollout, device)  # type: ignore[arg-type]


def evaluation_plan(model: Model, targets: list[float], rollouts: list[str]) -> list[tuple[str, float | None]]:
    """The (rollout, target) pairs one evaluation runs: each rollout x each target for the Decision model,
    a single (``state``, no target) for BC, whose actions depend on neither."""
    if isinstance(model, BCModel):
        return [(BC_ROLLOUT, None)]
    return [(r, float(t)) for r in rollouts for t in targets]

"""One policy step on the model: raw observation and return-to-go in, action and next state out.

``PolicyStep`` is the whole acting computation of one env step for N envs, with every piece
of state explicit (inputs and outputs, never hidden), in plain tensor ops (the backbones run
inside ``plain_ops()``): it is what ``agents/deploy.py`` traces into ONNX and TorchScript.

    forward(obs (N, obs_dim), rtg (N,), prev_action (N, act_dim), timestep (N,) int64, *state)
        -> (action (N, act_dim), *next_state)

- ``obs`` is the raw observation (normalized inside with the dataset's mean and std);
  ``rtg`` the unscaled return-to-go R^_t (target minus the rewards so far; scaled inside);
  ``prev_action`` the action taken at t - 1 (ignored at t = 0); ``timestep`` the episode step t.
- ``recurrent``: ``DecisionModel.step``; the state is the backbone's (one entry per tensor, e.g.
  ``layer0``, or ``layer0.0`` / ``layer0.1`` for a layer with two).
- ``window``: ``DecisionModel.window_step``; the state is the last K steps' inputs (``rtg``, ``obs``,
  ``action``, ``timestep``, right-aligned: step t in the last slot).

The token layout is the model's; the returns-to-go bookkeeping (R^ <- R^ - r) stays with the caller, which
owns the rewards. Run eagerly it gives ``SequencePolicy``'s actions (tested through the exported files):
both call the same two model methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqrl.core.errors import SeqRLError

from .backbones import State
from .backbones import state as state_tree
from .backbones.plain import plain_ops
from .model import DecisionModel
from .policy import ROLLOUTS, Rollout

WINDOW_STATE = ("rtg", "obs", "action", "timestep")  # window mode: the last K steps of these


@dataclass(frozen=True)
class StateSpec:
    """One state tensor: its name, its shape for one env, which dim is the env dim, its dtype."""

    name: str
    shape: tuple[int, ...]  # with 1 at ``batch_dim``
    batch_dim: int
    dtype: str  # numpy name: "float32", "int64", ...

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "batch_dim": self.batch_dim, "dtype": self.dtype}


class PolicyStep(nn.Module):
    """The acting computation of one env step for N envs (see the module docstring)."""

    def __init__(
        self, model: DecisionModel, obs_mean: np.ndarray, obs_std: np.ndarray, rtg_scale: float, rollout: Rollout
    ) -> None:
        super().__init__()
        if rollout not in ROLLOUTS:
            raise SeqRLError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}.")
        if rollout == "recurrent" and not model.has_recurrent_step:
            raise SeqRLError(
                f"The {model.cfg.backbone} backbone has no O(1) recurrent step (its state grows with the "
                "window); use --rollout window."
            )
        self.model, self.rollout = model.eval(), rollout
        # When traced: True -> a graph for steps where every env is past t = 0 (one backbone pass; see export.py),
        # False -> the general graph. Run eagerly, the step picks by itself.
        self.started = False
        p = next(model.parameters())
        self.register_buffer("obs_mean", torch.as_tensor(np.asarray(obs_mean), dtype=p.dtype, device=p.device))
        self.register_buffer("obs_std", torch.as_tensor(np.asarray(obs_std), dtype=p.dtype, device=p.device))
        self.register_buffer("rtg_scale", torch.tensor(float(rtg_scale), dtype=p.dtype, device=p.device))
        one, two = self._initial_tree(1), self._initial_tree(2)
        self._template = one
        self.state_specs = [
            StateSpec(name, tuple(t.shape), dim, str(t.dtype).removeprefix("torch."))
            for (name, t), dim in zip(self._named(one), state_tree.batch_dims(one, two))
        ]

    # ---- state --------------------------------------------------------------------------------
    def _initial_tree(self, batch: int) -> State:
        with plain_ops():
            return self.model.initial_window(batch) if self.rollout == "window" else self.model.initial_state(batch)

    def _named(self, tree: State) -> list[tuple[str, Tensor]]:
        if self.rollout == "window":
            return list(zip(WINDOW_STATE, tree))
        if isinstance(tree, Tensor):
            return [("layer", tree)]
        return [item for i, sub in enumerate(tree) for item in state_tree.leaves(sub, f"layer{i}")]

    def initial_state(self, batch: int) -> list[Tensor]:
        """The state tensors before the first step of ``batch`` envs, in ``state_specs`` order."""
        return [t for _, t in self._named(self._initial_tree(batch))]

    # ---- the step -----------------------------------------------------------------------------
    def forward(self, obs: Tensor, rtg: Tensor, prev_action: Tensor, timestep: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        s = (obs - self.obs_mean) / self.obs_std  # (N, obs_dim)
        r = rtg / self.rtg_scale  # (N,)
        tree = state_tree.rebuild(self._template, list(state))
        with plain_ops():
            tracing = torch.jit.is_tracing()  # a graph cannot branch on data: say which case it is for
            if self.rollout == "recurrent":
                action, new = self.model.step(r, s, prev_action, timestep, tree, self.started if tracing else None)
            else:
                action, new = self.model.window_step(r, s, prev_action, timestep, tree, False if tracing else None)
        return (action, *(t for _, t in self._named(new)))

"""One policy step on the model: raw observation and return-to-go in, action and next state out.

``PolicyStep`` is the whole acting computation of one env step for N envs, with every piece
of state explicit (inputs and outputs, never hidden), in plain tensor ops (the backbones run
inside ``plain_ops()``): it is what ``agents/export.py`` traces into ONNX and TorchScript.

    forward(obs (N, obs_dim), rtg (N,), prev_action (N, act_dim), timestep (N,) int64, *state)
        -> (action (N, act_dim), *next_state)

- ``obs`` is the raw observation (normalized inside with the dataset's mean and std);
  ``rtg`` the unscaled return-to-go R^_t (target minus the rewards so far; scaled inside);
  ``prev_action`` the action taken at t - 1 (ignored at t = 0); ``timestep`` the episode step t.
- ``recurrent``: the state is the backbone's (one entry per tensor, e.g. ``layer0``, or
  ``layer0.0`` / ``layer0.1`` for a layer with two). Tokens a_{t-1}, R^_t, s_t go through the
  backbone with the carried state; at t = 0 the a_{t-1} token is skipped, per env (envs need
  not be in lockstep): one backbone pass over a_{t-1} first, whose state is kept only where
  t > 0, then one over R^_t, s_t. When every env is past t = 0, one pass over the three.
- ``window``: DT's evaluation; the state is the last K steps' inputs (``rtg``, ``obs``,
  ``action``, ``timestep``, right-aligned: step t in the last slot), and the backbone re-runs
  them from its initial state.

The token layout is the model's (``DecisionModel.step_tokens`` / ``interleave``); the
returns-to-go bookkeeping (R^ <- R^ - r) stays with the caller, which owns the rewards.
Run eagerly it gives ``SequencePolicy``'s actions (tested through the exported files), so
the PyTorch policy can delegate its ``act`` to it: one acting computation for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqrl.config import Rollout
from seqrl.errors import SeqRLError

from .backbones import State
from .backbones.plain import plain_ops
from .model import TOKENS_PER_STEP, DecisionModel
from .policy import ROLLOUTS

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


def _flatten(tree: State, name: str) -> list[tuple[str, Tensor]]:
    if isinstance(tree, Tensor):
        return [(name, tree)]
    if isinstance(tree, (tuple, list)):
        return [item for i, sub in enumerate(tree) for item in _flatten(sub, f"{name}.{i}")]
    raise SeqRLError(f"Cannot export a backbone state holding {type(tree).__name__} (only tensors and tuples).")


def _unflatten(template: State, flat: list[Tensor]) -> State:
    """The tree of ``template`` with its leaves taken, in order, from ``flat`` (consumed)."""
    if isinstance(template, Tensor):
        return flat.pop(0)
    return tuple(_unflatten(sub, flat) for sub in template)


def _batch_dim(one: Tensor, two: Tensor) -> int:
    diff = [d for d, (a, b) in enumerate(zip(one.shape, two.shape)) if a != b]
    if len(diff) != 1:
        raise SeqRLError(f"Cannot tell the env dim of a state tensor of shape {tuple(one.shape)}.")
    return diff[0]


def has_recurrent_step(model: DecisionModel) -> bool:
    """Whether the backbone's state is O(1) per env step (every backbone but the transformer)."""
    return model.backbone.constant_state


class PolicyStep(nn.Module):
    """The acting computation of one env step for N envs (see the module docstring)."""

    def __init__(
        self, model: DecisionModel, obs_mean: np.ndarray, obs_std: np.ndarray, rtg_scale: float, rollout: Rollout
    ) -> None:
        super().__init__()
        if rollout not in ROLLOUTS:
            raise SeqRLError(f"rollout must be one of {', '.join(ROLLOUTS)}, got {rollout!r}.")
        if rollout == "recurrent" and not has_recurrent_step(model):
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
            StateSpec(name, tuple(t1.shape), _batch_dim(t1, t2), str(t1.dtype).removeprefix("torch."))
            for (name, t1), (_, t2) in zip(self._named(one), self._named(two))
        ]

    # ---- state --------------------------------------------------------------------------------
    def _initial_tree(self, batch: int) -> State:
        m, p = self.model, self.obs_mean
        if self.rollout == "window":  # the last K steps' inputs
            k = m.cfg.context_len
            long = torch.zeros(batch, k, dtype=torch.long, device=p.device)
            return (p.new_zeros(batch, k), p.new_zeros(batch, k, m.cfg.obs_dim), p.new_zeros(batch, k, m.cfg.act_dim), long)
        with plain_ops():
            return m.initial_state(batch)

    def _named(self, tree: State) -> list[tuple[str, Tensor]]:
        if self.rollout == "window":
            return list(zip(WINDOW_STATE, tree))
        return _flatten(tree, "layer") if isinstance(tree, Tensor) else [
            item for i, sub in enumerate(tree) for item in _flatten(sub, f"layer{i}")
        ]

    def initial_state(self, batch: int) -> list[Tensor]:
        """The state tensors before the first step of ``batch`` envs, in ``state_specs`` order."""
        return [t for _, t in self._named(self._initial_tree(batch))]

    # ---- the step -----------------------------------------------------------------------------
    def forward(self, obs: Tensor, rtg: Tensor, prev_action: Tensor, timestep: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        s = (obs - self.obs_mean) / self.obs_std  # (N, obs_dim)
        r = rtg / self.rtg_scale  # (N,)
        with plain_ops():
            if self.rollout == "recurrent":
                return self._recurrent(s, r, prev_action, timestep, list(state))
            return self._window(s, r, prev_action, timestep, *state)

    def _recurrent(self, s: Tensor, r: Tensor, prev: Tensor, ts: Tensor, flat: list[Tensor]) -> tuple[Tensor, ...]:
        m = self.model
        tokens = m.step_tokens(r[:, None, None], s[:, None], ts[:, None], prev[:, None])  # (N, 3, D): a_{t-1}, R^_t, s_t
        state = _unflatten(self._template, flat)
        started = self.started if torch.jit.is_tracing() else bool((ts > 0).all())
        if started:  # every env past t = 0: one pass over the three tokens
            h, new = m.backbone(tokens, state)
            return (m.predict_action(h[:, -1]), *(t for _, t in self._named(new)))
        _, after_a = m.backbone(tokens[:, :1], state)
        first = ts == 0  # no a_{t-1} at t = 0: keep the state from before it
        kept = [
            torch.where(first.view([-1 if d == spec.batch_dim else 1 for d in range(len(spec.shape))]), b, a)
            for spec, (_, b), (_, a) in zip(self.state_specs, self._named(state), self._named(after_a))
        ]
        h, new = m.backbone(tokens[:, 1:], _unflatten(self._template, kept))  # (N, 2, D)
        return (m.predict_action(h[:, -1]), *(t for _, t in self._named(new)))

    def _window(
        self, s: Tensor, r: Tensor, prev: Tensor, ts: Tensor, h_rtg: Tensor, h_obs: Tensor, h_act: Tensor, h_ts: Tensor
    ) -> tuple[Tensor, ...]:
        m, k = self.model, self.model.cfg.context_len
        # the last slot holds step t - 1: its action is the one taken; then shift in step t (action unknown: 0)
        h_act = torch.cat([h_act[:, :-1], prev[:, None]], dim=1)
        h_rtg = torch.cat([h_rtg[:, 1:], r[:, None]], dim=1)  # (N, K)
        h_obs = torch.cat([h_obs[:, 1:], s[:, None]], dim=1)  # (N, K, obs_dim)
        h_act = torch.cat([h_act[:, 1:], torch.zeros_like(prev[:, None])], dim=1)  # (N, K, act_dim)
        h_ts = torch.cat([h_ts[:, 1:], ts[:, None]], dim=1)  # (N, K)
        # the last n = min(t + 1, K) slots are this episode's: rotate them to the front (the causal backbone
        # never lets the stale slots behind them reach their outputs) and read the output at s_t
        n = (ts + 1).clamp(max=k)  # (N,)
        idx = (torch.arange(k, device=ts.device)[None] + (k - n)[:, None]) % k  # (N, K)
        tokens = m.interleave(
            h_rtg.gather(1, idx)[..., None],
            h_obs.gather(1, idx[..., None].expand_as(h_obs)),
            h_act.gather(1, idx[..., None].expand_as(h_act)),
            h_ts.gather(1, idx),
        )[:, :-1]  # (N, 3K - 1, D): a_t is unknown
        h, _ = m.backbone(tokens)
        at = (TOKENS_PER_STEP * (n - 1) + 1)[:, None, None].expand(-1, 1, h.shape[-1])  # the s_t token
        action = m.predict_action(h.gather(1, at)[:, 0])
        return action, h_rtg, h_obs, h_act, h_ts

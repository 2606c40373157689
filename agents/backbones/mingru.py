"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"), trained with a log-space parallel scan.

Paper: z_t = sigmoid(W_z x_t), h~_t = W_h x_t, h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.
Written here with the forget gate f_t = 1 - z_t (so the UR-paper gate options apply to it):

    h_t = f_t * h_{t-1} + (1 - f_t) * g(W_h x_t)

with g(v) = v + 0.5 if v >= 0 else sigmoid(v), which keeps h~ > 0 so that the
recurrence lives in log space (the paper's numerically stable form):

    log f = -softplus(-k), log(1 - f) = -softplus(k),  k = W_f x
    log h = scan(log a = log f, log b = log(1 - f) + log g(W_h x), log h_0)

The gate option (``--mingru.gate ugi`` / ``ur``) initializes f uniformly and/or refines it (see gates.py).
The state carried between calls is h itself (B, D); it enters the scan as log h.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .gates import ForgetGate, Gate, GateOption
from .registry import register_backbone
from .native_scan import native_gated_scan
from .plain import plain_ops_active
from .scan import ScanBackend, ScanOption, log_space_scan, safe_log, sequential_scan, use_native
from .stack import Mixer, ResidualStack


@dataclass(frozen=True)
class MinGRUOptions(ScanOption, GateOption):
    """Options of --backbone mingru."""


def candidate(v: Tensor) -> Tensor:
    """g(v), the positive activation of the candidate state h~ (paper, log-space minGRU)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_candidate(v: Tensor) -> Tensor:
    """log g(v) of ``candidate``, computed without forming g(v) for negative v."""
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


class MinGRULayer(Mixer):
    residual_out = "to_out"

    def __init__(self, width: int, gate: Gate = "default", scan: ScanBackend = "auto") -> None:
        super().__init__()
        self.width, self.scan = width, scan
        self.gate = ForgetGate(gate)
        self.in_proj = nn.Linear(width, (self.gate.n_logits + 1) * width)  # [k_f | (k_r) | W_h x]
        self.gate.init_(self.in_proj.bias, width)
        self.to_out = nn.Linear(width, width)

    def _split(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        *k, v = self.in_proj(x).chunk(self.gate.n_logits + 1, dim=-1)
        return k, v

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.width, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        k, v = self._split(x)  # (B, T, D) each
        if plain_ops_active():  # the step's recurrence, looped over T
            f = self.gate.value(k)
            h = sequential_scan(f, (1 - f) * candidate(v), state)
        elif use_native(x, self.scan):  # the same recurrence in linear space: one fused C loop (gates inside)
            h = native_gated_scan(self.gate.logit(k), v, state)
        else:  # the paper's log-space parallel scan
            log_f, log_1mf = self.gate.log_pair(k)
            h = log_space_scan(log_f, log_1mf + log_candidate(v), None if state is None else safe_log(state)).exp()
        return self.to_out(h), h[:, -1]  # h: (B, T, D)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self._split(x_t)  # (B, D) each
        f = self.gate.value(k)
        h = f * state + (1 - f) * candidate(v)
        return self.to_out(h), h

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        return self.gate.activations(self._split(x)[0])


@register_backbone("mingru", options=MinGRUOptions)
class MinGRU(ResidualStack):
    """Stacked minGRU layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        o: MinGRUOptions = self.options
        return MinGRULayer(cfg.width, o.gate, o.scan)

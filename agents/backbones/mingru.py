"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"), trained with a log-space parallel scan.

Paper: z_t = sigmoid(W_z x_t), h~_t = W_h x_t, h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.
Written here with the forget gate f_t = 1 - z_t (so the UR-paper gate options apply to it):

    h_t = f_t * h_{t-1} + (1 - f_t) * g(W_h x_t)

with g(v) = v + 0.5 if v >= 0 else sigmoid(v), which keeps h~ > 0 so that the
recurrence lives in log space (the paper's numerically stable form):

    log f = -softplus(-k), log(1 - f) = -softplus(k),  k = W_f x
    log h = scan(log a = log f, log b = log(1 - f) + log g(W_h x), log h_0)

``--gate ugi`` / ``ur`` initialize f uniformly and/or refine it (see gates.py).
The state carried between calls is h itself (B, D); it enters the scan as log h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .gates import ForgetGate
from .registry import register_backbone
from .scan import scan_positive
from .stack import Mixer, ResidualStack


def g(v: Tensor) -> Tensor:
    """Positive activation of the candidate state (paper, log-space minGRU)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    """log g(v), computed without forming g(v) for negative v."""
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


class MinGRULayer(Mixer):
    def __init__(self, d_model: int, gate: str = "default", scan: str = "auto") -> None:
        super().__init__()
        self.d_model, self.scan = d_model, scan
        self.forget = ForgetGate(d_model, d_model, gate)
        self.to_hidden = nn.Linear(d_model, d_model)
        self.to_out = nn.Linear(d_model, d_model)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.d_model, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_f, log_1mf = self.forget.log_pair(x)  # (B, T, D) each
        log_b = log_1mf + log_g(self.to_hidden(x))
        h = scan_positive(log_f, log_b, state, self.scan)  # (B, T, D)
        return self.to_out(h), h[:, -1]

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        f = self.forget.value(x_t)  # (B, D)
        h = f * state + (1 - f) * g(self.to_hidden(x_t))
        return self.to_out(h), h

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        return self.forget.activations(x)


@register_backbone("mingru")
class MinGRU(ResidualStack):
    """Stacked minGRU layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return MinGRULayer(cfg.d_model, cfg.gate, cfg.scan)

"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"), trained with a log-space parallel scan.

    z_t = sigmoid(W_z x_t),  h~_t = g(W_h x_t),  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

with g(v) = v + 0.5 if v >= 0 else sigmoid(v), which keeps h~ > 0 so that the
whole recurrence lives in log space (the paper's numerically stable form):

    log z = -softplus(-k),  log(1 - z) = -softplus(k),  k = W_z x
    log h = scan(log a = log(1 - z), log b = log z + log g(W_h x), log h_0)

The state carried between calls is h itself (B, D); it enters the scan as log h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .registry import register_backbone
from .scan import log_space_scan, safe_log
from .stack import Mixer, ResidualStack


def g(v: Tensor) -> Tensor:
    """Positive activation of the candidate state (paper, appendix: log-space minGRU)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    """log g(v), computed without forming g(v) for negative v."""
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


class MinGRULayer(Mixer):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.to_gate_hidden = nn.Linear(d_model, 2 * d_model)  # [k | W_h x]
        self.to_out = nn.Linear(d_model, d_model)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.d_model, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        k, v = self.to_gate_hidden(x).chunk(2, dim=-1)  # (B, T, D) each
        log_a = -F.softplus(k)  # log(1 - z)
        log_b = -F.softplus(-k) + log_g(v)  # log z + log h~
        log_h0 = None if state is None else safe_log(state)
        h = log_space_scan(log_a, log_b, log_h0).exp()  # (B, T, D)
        return self.to_out(h), h[:, -1]

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.to_gate_hidden(x_t).chunk(2, dim=-1)  # (B, D) each
        z = torch.sigmoid(k)
        h = (1 - z) * state + z * g(v)
        return self.to_out(h), h


@register_backbone("mingru")
class MinGRU(ResidualStack):
    """Stacked minGRU layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return MinGRULayer(cfg.d_model)

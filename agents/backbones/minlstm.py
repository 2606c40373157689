"""minLSTM (Feng et al. 2024), trained with a log-space parallel scan.

    f_t = sigmoid(W_f x_t), i_t = sigmoid(W_i x_t), h~_t = g(W_h x_t),
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),
    h_t = f'_t * h_{t-1} + i'_t * h~_t

Log space (the paper's stable form): d = softplus(-k_f) - softplus(-k_i) = log i - log f,
log f' = -softplus(d), log i' = -softplus(-d). With ``--minlstm.gate ur`` the refined forget
gate g(f, r) (UR paper eq. 12) takes f's place before the normalization (log f -> log g).
The state carried between calls is h (B, D); it enters the scan as log h.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .gates import ForgetGate, Gate, GateOption
from .mingru import candidate, log_candidate
from .registry import register_backbone
from .native_scan import native_gated_scan
from .plain import plain_ops_active
from .scan import ScanBackend, ScanOption, log_space_scan, safe_log, sequential_scan, use_native
from .stack import Mixer, ResidualStack


@dataclass(frozen=True)
class MinLSTMOptions(ScanOption, GateOption):
    """Options of --backbone minlstm."""


class MinLSTMLayer(Mixer):
    residual_out = "to_out"

    def __init__(self, width: int, gate: Gate = "default", scan: ScanBackend = "auto") -> None:
        super().__init__()
        self.width, self.scan = width, scan
        self.gate = ForgetGate(gate)
        self.in_proj = nn.Linear(width, (self.gate.n_logits + 2) * width)  # [k_f | (k_r) | k_i | W_h x]
        self.gate.init_(self.in_proj.bias, width)
        self.to_out = nn.Linear(width, width)

    def _gates(self, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        """-> forget logits, d = log i - log f_eff, and W_h x."""
        *k, k_i, v = self.in_proj(x).chunk(self.gate.n_logits + 2, dim=-1)
        log_f, _ = self.gate.log_pair(k)
        return k, -F.softplus(-k_i) - log_f, v

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.width, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        _, d, v = self._gates(x)  # (B, T, D) each
        if plain_ops_active():  # the step's recurrence, looped over T
            h = sequential_scan(torch.sigmoid(-d), torch.sigmoid(d) * candidate(v), state)
        elif use_native(x, self.scan):  # f' = sigma(-d), i' = 1 - f', in linear space: one fused C loop
            h = native_gated_scan(-d, v, state)
        else:  # log f' = -softplus(d), log i' = -softplus(-d)
            log_h0 = None if state is None else safe_log(state)
            h = log_space_scan(-F.softplus(d), -F.softplus(-d) + log_candidate(v), log_h0).exp()
        return self.to_out(h), h[:, -1]

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        _, d, v = self._gates(x_t)
        h = torch.sigmoid(-d) * state + torch.sigmoid(d) * candidate(v)
        return self.to_out(h), h

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        k, d, _ = self._gates(x)
        return {**self.gate.activations(k), "normalized": torch.sigmoid(-d)}


@register_backbone("minlstm", options=MinLSTMOptions)
class MinLSTM(ResidualStack):
    """Stacked minLSTM layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        o: MinLSTMOptions = self.options
        return MinLSTMLayer(cfg.width, o.gate, o.scan)

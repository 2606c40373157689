"""minLSTM (Feng et al. 2024), trained with a log-space parallel scan.

    f_t = sigmoid(W_f x_t), i_t = sigmoid(W_i x_t), h~_t = g(W_h x_t),
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),
    h_t = f'_t * h_{t-1} + i'_t * h~_t

Log space (the paper's stable form): d = softplus(-k_f) - softplus(-k_i) = log i - log f,
log f' = -softplus(d), log i' = -softplus(-d). With ``--gate ur`` the refined forget
gate g(f, r) takes f's place before the normalization (log f -> log g).
The state carried between calls is h (B, D); it enters the scan as log h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .gates import ForgetGate
from .mingru import g, log_g
from .registry import register_backbone
from .scan import scan_positive
from .stack import Mixer, ResidualStack


class MinLSTMLayer(Mixer):
    def __init__(self, d_model: int, gate: str = "default", scan: str = "auto") -> None:
        super().__init__()
        self.d_model, self.scan = d_model, scan
        self.forget = ForgetGate(d_model, d_model, gate)
        self.to_input_hidden = nn.Linear(d_model, 2 * d_model)  # [k_i | W_h x]
        self.to_out = nn.Linear(d_model, d_model)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.d_model, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_f, _ = self.forget.log_pair(x)
        k_i, v = self.to_input_hidden(x).chunk(2, dim=-1)
        d = -F.softplus(-k_i) - log_f  # log i - log f
        log_b = -F.softplus(-d) + log_g(v)  # log i' + log h~
        h = scan_positive(-F.softplus(d), log_b, state, self.scan)  # log a = log f'
        return self.to_out(h), h[:, -1]

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        f = self.forget.value(x_t)
        k_i, v = self.to_input_hidden(x_t).chunk(2, dim=-1)
        i = torch.sigmoid(k_i)
        h = (f * state + i * g(v)) / (f + i)
        return self.to_out(h), h

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        acts = self.forget.activations(x)
        f = self.forget.value(x)
        acts["normalized"] = f / (f + torch.sigmoid(self.to_input_hidden(x).chunk(2, dim=-1)[0]))
        return acts


@register_backbone("minlstm")
class MinLSTM(ResidualStack):
    """Stacked minLSTM layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return MinLSTMLayer(cfg.d_model, cfg.gate, cfg.scan)

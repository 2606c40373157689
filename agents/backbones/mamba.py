"""A selective SSM (Mamba, Gu & Dao 2023) in plain PyTorch, on the same log-space scan as minGRU.

    x, z = in_proj(u);  x = SiLU(causal depthwise conv(x))
    Delta_t = softplus(W_dt (W_r x_t)),  B_t = W_B x_t,  C_t = W_C x_t        (input-dependent)
    h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t x_t,  A = -exp(A_log) real diagonal (E, N)
    y_t = C_t . h_t + D x_t;   out = out_proj(y * SiLU(z))

On the CPU the whole SSM runs in a fused C loop (``scan.selective_scan``); elsewhere
the log-space scan serves: exp(Delta A) is in (0, 1) and log a = Delta A exactly,
and B_t x_t, of either sign, is scanned as its positive and negative parts.
Runs on a CPU, no CUDA kernel. State: (conv buffer (B, E, d_conv - 1), h (B, E, N)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .registry import register_backbone
from .scan import ScanBackend, ScanOption, selective_scan, selective_step
from .ssm import SSMOptions, init_log_dt
from .stack import Mixer, ResidualStack


@dataclass(frozen=True)
class MambaOptions(ScanOption, SSMOptions):
    """Options of --backbone mamba (d_state: N per expanded channel)."""


class SelectiveSSMLayer(Mixer):
    residual_out = "out_proj"

    def __init__(self, width: int, d_state: int = 16, expand: int = 2, d_conv: int = 4, scan: ScanBackend = "auto",
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.scan = scan
        e, n, r = expand * width, d_state, math.ceil(width / 16)
        self.e, self.n, self.r, self.d_conv = e, n, r, d_conv
        self.in_proj = nn.Linear(width, 2 * e)
        self.conv = nn.Conv1d(e, e, d_conv, groups=e)  # applied to [buffer | x], no padding: causal
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, e)
        with torch.no_grad():  # Mamba's init: softplus(bias) = Delta ~ logU[dt_min, dt_max]
            dt = torch.exp(init_log_dt(e, dt_min, dt_max))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]  # Mamba's mark: a re-init keeps it
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(e, 1))  # S4D-Real
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, width)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        return (
            torch.zeros(batch, self.e, self.d_conv - 1, device=device, dtype=dtype),
            torch.zeros(batch, self.e, self.n, device=device, dtype=dtype),
        )

    def _selective(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """xc (..., E) -> Delta (..., E), B (..., N), C (..., N)."""
        dt, B, C = self.x_proj(xc).split([self.r, self.n, self.n], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None):
        b, t, _ = x.shape
        conv_buf, h0 = state if state is not None else (None, None)
        xi, z = self.in_proj(x).chunk(2, dim=-1)  # (B, T, E) each
        xi = xi.transpose(1, 2)  # (B, E, T)
        if conv_buf is None:
            conv_buf = xi.new_zeros(b, self.e, self.d_conv - 1)
        padded = torch.cat([conv_buf, xi], dim=-1)  # (B, E, T + d_conv - 1)
        xc = F.silu(self.conv(padded)).transpose(1, 2)  # (B, T, E)
        dt, B, C = self._selective(xc)
        y, h_last = selective_scan(xc, dt, -self.A_log.exp(), B, C, h0, self.scan)  # (B, T, E), (B, E, N)
        y = y + self.D * xc
        return self.out_proj(y * F.silu(z)), (padded[..., -(self.d_conv - 1) :], h_last)

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor]):
        conv_buf, h = state
        xi, z = self.in_proj(x_t).chunk(2, dim=-1)  # (B, E)
        window = torch.cat([conv_buf, xi[..., None]], dim=-1)  # (B, E, d_conv)
        xc = F.silu((window * self.conv.weight[:, 0]).sum(-1) + self.conv.bias)
        dt, B, C = self._selective(xc)
        h = selective_step(xc, dt, -self.A_log.exp(), B, h)
        y = (h * C[:, None, :]).sum(-1) + self.D * xc
        return self.out_proj(y * F.silu(z)), (window[..., 1:], h)


@register_backbone("mamba", options=MambaOptions)
class Mamba(ResidualStack):
    """Stacked selective-SSM layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        o: MambaOptions = self.options
        return SelectiveSSMLayer(cfg.width, o.d_state, scan=o.scan, dt_min=o.dt_min, dt_max=o.dt_max)

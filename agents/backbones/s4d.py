"""S4D: a diagonal state space layer (Gu et al. 2022, "On the Parameterization and Initialization
of Diagonal State Space Models"), trained as a causal FFT convolution, stepped as a recurrence.

Per channel (H = width), N complex modes:
    A_n = -exp(log_A_re_n) + i A_im_n, S4D-Lin init: A_n = -1/2 + i pi n
    zero-order hold with learned step Delta = exp(log_dt):  A^ = exp(Delta A),  B^ = (A^ - 1) / A * B  (B = 1)
    recurrence  s_t = A^ s_{t-1} + B^ u_t,   y_t = 2 Re(C s_t) + D u_t
    convolution y = K * u + D u,  K_l = 2 Re(sum_n C_n B^_n A^_n^l)
The output goes through GELU and a linear layer. State: s (B, H, N) complex; inside
``plain_ops()`` the same s as a real (B, H, N, 2) pair (re, im), stepped in real arithmetic
(no FFT, no complex tensor: what ONNX can hold).
A carried state adds 2 Re(C A^^(t+1) s_0) to y_t, and the final state is
A^^T s_0 + sum_k A^^(T-1-k) B^ u_k, so chunked calls equal one long call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .plain import plain_ops_active
from .registry import register_backbone
from .ssm import SSMOptions, init_log_dt
from .stack import Mixer, ResidualStack


@dataclass(frozen=True)
class S4DOptions(SSMOptions):
    """Options of --backbone s4d (d_state: N complex modes per channel)."""


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


class S4DLayer(Mixer):
    residual_out = "out"

    def __init__(self, width: int, n_modes: int = 16, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        h, n = width, n_modes
        self.h, self.n = h, n
        self.log_dt = nn.Parameter(init_log_dt(h, dt_min, dt_max))
        self.log_A_re = nn.Parameter(torch.full((h, n), math.log(0.5)))
        self.A_im = nn.Parameter(math.pi * torch.arange(n, dtype=torch.float32).repeat(h, 1))
        self.C = nn.Parameter(torch.randn(h, n, 2) * math.sqrt(0.5))  # complex as (re, im)
        self.D = nn.Parameter(torch.randn(h))
        self.out = nn.Linear(h, h)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        if plain_ops_active():
            return torch.zeros(batch, self.h, self.n, 2, device=device, dtype=dtype)
        return torch.zeros(batch, self.h, self.n, device=device, dtype=complex_dtype(dtype))

    def _ssm(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Delta A, B^, C), each (H, N) complex."""
        A = torch.complex(-self.log_A_re.exp(), self.A_im)
        dtA = A * self.log_dt.exp()[:, None]
        C = torch.view_as_complex(self.C.contiguous())
        return dtA, (dtA.exp() - 1) / A, C

    def _powers(self, dtA: Tensor, t: int) -> Tensor:
        """A^^l for l = 0..t, (H, N, t + 1)."""
        return (dtA[..., None] * torch.arange(t + 1, device=dtA.device, dtype=dtA.real.dtype)).exp()

    def kernel(self, t: int) -> Tensor:
        """The convolution kernel K_l = 2 Re(sum_n C_n B^_n A^_n^l), l < t: (H, t)."""
        dtA, dB, C = self._ssm()
        return self._kernel(C * dB, self._powers(dtA, t - 1))

    @staticmethod
    def _kernel(c_db: Tensor, powers: Tensor) -> Tensor:
        """K from C B^ (H, N) and the powers A^^l (H, N, t): (H, t) (S4D's Vandermonde kernel)."""
        return 2 * torch.einsum("hn,hnl->hl", c_db, powers).real

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if plain_ops_active():  # the real-arithmetic step, looped over T
            s = self.initial_state(x.shape[0], x.device, x.dtype) if state is None else state
            ys = []
            for x_t in x.unbind(1):
                y_t, s = self._step_real(x_t, s)
                ys.append(y_t)
            return torch.stack(ys, dim=1), s
        b, t, _ = x.shape
        u = x.transpose(1, 2)  # (B, H, T)
        dtA, dB, C = self._ssm()
        powers = self._powers(dtA, t)
        k = self._kernel(C * dB, powers[..., :t])  # (H, T)
        y = torch.fft.irfft(torch.fft.rfft(u, n=2 * t) * torch.fft.rfft(k, n=2 * t), n=2 * t)[..., :t]
        uc = u.to(powers.dtype)
        s = torch.einsum("bht,hnt->bhn", uc, dB[..., None] * powers[..., :t].flip(-1))  # (B, H, N)
        if state is not None:
            y = y + 2 * torch.einsum("hn,bhn,hnt->bht", C, state, powers[..., 1:]).real
            s = s + powers[..., t] * state
        y = y + self.D[:, None] * u
        return self.out(F.gelu(y.transpose(1, 2))), s

    def _ssm_real(self) -> tuple[Tensor, ...]:
        """exp(Delta A), B^ and C as (re, im) pairs of (H, N) real tensors, computed without complex ops."""
        dt = self.log_dt.exp()[:, None]
        a_re, a_im = -self.log_A_re.exp(), self.A_im  # A
        mag = (dt * a_re).exp()
        e_re, e_im = mag * torch.cos(dt * a_im), mag * torch.sin(dt * a_im)  # exp(Delta A)
        den = a_re * a_re + a_im * a_im  # B^ = (exp(Delta A) - 1) / A
        b_re = ((e_re - 1) * a_re + e_im * a_im) / den
        b_im = (e_im * a_re - (e_re - 1) * a_im) / den
        return e_re, e_im, b_re, b_im, self.C[..., 0], self.C[..., 1]

    def _step_real(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``step`` with s as a real (B, H, N, 2) pair."""
        e_re, e_im, b_re, b_im, c_re, c_im = self._ssm_real()
        s_re, s_im = state.unbind(-1)
        u = x_t[..., None]  # (B, H, 1)
        s_re, s_im = e_re * s_re - e_im * s_im + b_re * u, e_re * s_im + e_im * s_re + b_im * u
        y = 2 * (c_re * s_re - c_im * s_im).sum(-1) + self.D * x_t  # 2 Re(C s)
        return self.out(F.gelu(y)), torch.stack([s_re, s_im], dim=-1)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        if plain_ops_active():
            return self._step_real(x_t, state)
        dtA, dB, C = self._ssm()
        s = dtA.exp() * state + dB * x_t[..., None]  # (B, H, N)
        y = 2 * (C * s).sum(-1).real + self.D * x_t
        return self.out(F.gelu(y)), s


@register_backbone("s4d", options=S4DOptions)
class S4D(ResidualStack):
    """Stacked S4D layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        o: S4DOptions = self.options
        return S4DLayer(cfg.width, o.d_state, o.dt_min, o.dt_max)

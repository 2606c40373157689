"""Scans for first-order linear recurrences h_t = a_t * h_{t-1} + b_t.

minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al. 2024) and the selective
SSM reduce to this recurrence with a_t, b_t depending on x_t only, so a whole
sequence is one scan. Two implementations compute the same function:

- ``log``: the Heinsen (2023) parallel scan in log space, pure PyTorch (any device);
- ``native``: the sequential loop in C with its backward (``native_scan.py``), CPU only,
  much faster there.

``use_native`` picks one (minGRU/minLSTM branch on it; ``scan_positive`` and
``selective_scan`` dispatch themselves): backend ``auto`` means native for CPU
tensors when the kernel is available, log space otherwise (CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from seqrl.core.errors import SeqRLError

from . import native_scan as _native
from .base import BackboneOptions
from .native_scan import native_scan, native_selective_scan
from .plain import plain_ops_active

ScanBackend = Literal["auto", "native", "log"]
SCAN_BACKENDS: tuple[str, ...] = get_args(ScanBackend)


@dataclass(frozen=True)
class ScanOption(BackboneOptions):
    """The scan-implementation option shared by the scan backbones (minGRU, minLSTM, Mamba)."""

    scan: ScanBackend = "auto"
    """Scan implementation (the same function either way): auto (native C loop on CPU, log-space on CUDA),
    native or log."""


def log_space_scan(log_a: Tensor, log_b: Tensor, log_h0: Tensor | None = None) -> Tensor:
    """Heinsen (2023) scan in log space; returns log h for every step.

    With a* = cumsum(log a):  log h_t = a*_t + logcumsumexp(log b - a*)_t,
    and h_0 enters as one extra leading step with a = 1, b = h_0.

    log_a, log_b: (B, T, ...); log_h0: (B, ...) or None (h_0 = 0). Returns (B, T, ...).
    """
    if log_h0 is not None:
        log_a = torch.cat([torch.zeros_like(log_a[:, :1]), log_a], dim=1)  # (B, T+1, ...), a_0 = 1
        log_b = torch.cat([log_h0.unsqueeze(1), log_b], dim=1)
    a_star = log_a.cumsum(dim=1)
    log_h = a_star + (log_b - a_star).logcumsumexp(dim=1)
    return log_h[:, 1:] if log_h0 is not None else log_h


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The recurrence as a plain loop (a reference for tests, and the scan of ``plain_ops()``).
    a, b: (B, T, D); returns h (B, T, D)."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def safe_log(x: Tensor) -> Tensor:
    """log of a non-negative tensor, with 0 mapped to a very negative finite number (keeps grads finite)."""
    return x.clamp_min(torch.finfo(x.dtype).tiny).log()


def signed_log_space_scan(log_a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for a_t > 0 and b_t, h_0 of any sign; returns h (not its log).

    The recurrence is linear in (b, h_0), so h = scan(b+, h0+) - scan(b-, h0-) with
    b+ = max(b, 0), b- = max(-b, 0): two log-space scans on non-negative inputs.
    """
    pos = log_space_scan(log_a, safe_log(b.clamp_min(0)), None if h0 is None else safe_log(h0.clamp_min(0)))
    neg = log_space_scan(log_a, safe_log((-b).clamp_min(0)), None if h0 is None else safe_log((-h0).clamp_min(0)))
    return pos.exp() - neg.exp()


def use_native(x: Tensor, backend: ScanBackend) -> bool:
    """Whether ``backend`` means the native C scan for tensors like ``x`` (see the module docstring);
    never inside ``plain_ops()``."""
    if backend == "log" or plain_ops_active():
        return False
    if backend == "auto":
        return x.device.type == "cpu" and _native.available()
    if backend == "native":
        if x.device.type != "cpu" or not _native.available():
            raise SeqRLError("The native scan (scan: native) needs CPU tensors and a C compiler (cc/gcc); "
                             "use scan auto or log (--<backbone>.scan).")
        return True
    raise SeqRLError(f"Unknown scan backend {backend!r}: use one of {', '.join(SCAN_BACKENDS)} (--<backbone>.scan).")


def scan_positive(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, backend: ScanBackend = "auto") -> Tensor:
    """h for a_t = exp(log_a) in (0, 1], b_t = exp(log_b) > 0, h_0 >= 0 (None: zeros). Returns h (B, T, ...)."""
    if use_native(log_a, backend):
        return native_scan(log_a.exp(), log_b.exp(), h0)
    return log_space_scan(log_a, log_b, None if h0 is None else safe_log(h0)).exp()


def selective_step(x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, h: Tensor) -> Tensor:
    """One step of Mamba's SSM: x, dt (B, E); A (E, N); Bm (B, N); h (B, E, N) -> the next h."""
    return (dt[..., None] * A).exp() * h + (dt * x)[..., None] * Bm[:, None, :]


def selective_scan(
    x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor | None = None, backend: ScanBackend = "auto"
) -> tuple[Tensor, Tensor]:
    """Mamba's SSM: h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t, y_t = C_t . h_t.

    x, dt: (B, T, E); A: (E, N) negative; Bm, Cm: (B, T, N); h0: (B, E, N) or None.
    Returns y (B, T, E) and the last state (B, E, N). The native path is fused (no (B, T, E, N)
    inputs); the log-space path builds them and runs ``signed_log_space_scan``.
    """
    if use_native(x, backend):
        return native_selective_scan(x, dt, A, Bm, Cm, h0)
    if plain_ops_active():  # the step's recurrence, looped over T
        h = x.new_zeros(x.shape[0], A.shape[0], A.shape[1]) if h0 is None else h0
        ys = []
        for t in range(x.shape[1]):
            h = selective_step(x[:, t], dt[:, t], A, Bm[:, t], h)
            ys.append((h * Cm[:, t, None, :]).sum(-1))
        return torch.stack(ys, dim=1), h
    log_a = dt[..., None] * A  # (B, T, E, N)
    bx = (dt * x)[..., None] * Bm[:, :, None, :]
    h = signed_log_space_scan(log_a, bx, h0)
    return (h * Cm[:, :, None, :]).sum(-1), h[:, -1]

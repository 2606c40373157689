"""Parallel scans for first-order linear recurrences h_t = a_t * h_{t-1} + b_t.

minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al. 2024) reduce to this
recurrence with a_t, b_t depending on x_t only, so a whole sequence is one scan.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
    """The recurrence as a plain loop (a reference for tests). a, b: (B, T, D); returns h (B, T, D)."""
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

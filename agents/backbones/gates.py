"""Gate-level tools from "Improving the Gating Mechanism of Recurrent Neural Networks" (Gu et al. 2020).

- UGI, uniform gate initialization (eq. 9): the forget-gate bias b_f = sigma^-1(u),
  u ~ U[1/D, 1 - 1/D], so initial forget activations are about uniform on (0, 1).
- The refine gate (eq. 12): an auxiliary gate r turns the forget gate f into
      g = r * (1 - (1 - f)^2) + (1 - r) * f^2  =  f^2 + 2 r f (1 - f),
  which lies in [f^2, 1 - (1 - f)^2]. When both are used, the refine bias is
  initialized uniformly too (Listing 2: b_r = -b_f).

Both act on gates that depend on x_t only in minGRU / minLSTM, so those stay
scan-parallel. ``log_refine`` gives log g and log(1 - g) from logits, stably:
      g     = f * (f + 2 r (1 - f))
      1 - g = (1 - f) * ((1 - f) + 2 (1 - r) f)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrl.errors import SeqRLError

GATES = ("default", "ugi", "ur")
LOG2 = math.log(2.0)


def check_gate(gate: str) -> str:
    if gate not in GATES:
        raise SeqRLError(f"Unknown gate {gate!r}: use one of {', '.join(GATES)} (--gate).")
    return gate


def uniform_gate_bias(n: int, generator: torch.Generator | None = None) -> Tensor:
    """sigma^-1(u), u ~ U[1/n, 1 - 1/n] (eq. 9 / Listing 2)."""
    u = torch.rand(n, generator=generator) * (1 - 2 / n) + 1 / n
    return torch.log(u) - torch.log1p(-u)


def init_ugi_(forget: nn.Linear, refine: nn.Linear | None = None, sl: slice = slice(None)) -> None:
    """UGI on the forget-gate rows ``sl`` of ``forget``'s bias (and b_r = -b_f on ``refine``)."""
    with torch.no_grad():
        bias = forget.bias[sl]
        b = uniform_gate_bias(bias.numel()).to(bias)
        bias.copy_(b)
        if refine is not None:
            refine.bias.copy_(-b)


def refine(f: Tensor, r: Tensor) -> Tensor:
    """The effective gate g (eq. 12) from activations f, r."""
    return r * (1 - (1 - f) ** 2) + (1 - r) * f**2


def log_sigmoid_pair(k: Tensor) -> tuple[Tensor, Tensor]:
    """(log sigma(k), log(1 - sigma(k))), computed with softplus."""
    return -F.softplus(-k), -F.softplus(k)


def log_refine(k_f: Tensor, k_r: Tensor) -> tuple[Tensor, Tensor]:
    """(log g, log(1 - g)) of the refined gate, from the logits of f and r."""
    log_f, log_1mf = log_sigmoid_pair(k_f)
    log_r, log_1mr = log_sigmoid_pair(k_r)
    log_g = log_f + torch.logaddexp(log_f, LOG2 + log_r + log_1mf)
    log_1mg = log_1mf + torch.logaddexp(log_1mf, LOG2 + log_1mr + log_f)
    return log_g, log_1mg


class ForgetGate(nn.Module):
    """The forget gate of a scan backbone, f = sigma(W_f x), with the options ``default``, ``ugi``, ``ur``.

    ``log_pair(x)`` -> (log f_eff, log(1 - f_eff)) over a sequence (the scan path);
    ``value(x)`` -> f_eff (the step path); ``activations(x)`` -> what diagnostics plot.
    """

    def __init__(self, d_in: int, d_out: int, gate: str = "default") -> None:
        super().__init__()
        self.gate = check_gate(gate)
        self.lin = nn.Linear(d_in, d_out)
        self.refine_lin = nn.Linear(d_in, d_out) if gate == "ur" else None
        if gate in ("ugi", "ur"):
            init_ugi_(self.lin, self.refine_lin)

    def log_pair(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.refine_lin is None:
            return log_sigmoid_pair(self.lin(x))
        return log_refine(self.lin(x), self.refine_lin(x))

    def value(self, x: Tensor) -> Tensor:
        f = torch.sigmoid(self.lin(x))
        return f if self.refine_lin is None else refine(f, torch.sigmoid(self.refine_lin(x)))

    def activations(self, x: Tensor) -> dict[str, Tensor]:
        out = {"forget": torch.sigmoid(self.lin(x))}
        if self.refine_lin is not None:
            out["effective"] = self.value(x)
        return out

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
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from seqrl.core.errors import SeqRLError

from .base import BackboneOptions

Gate = Literal["default", "ugi", "ur"]
GATES: tuple[str, ...] = get_args(Gate)
LOG2 = math.log(2.0)


@dataclass(frozen=True)
class GateOption(BackboneOptions):
    """The forget-gate option shared by the gated scan backbones (minGRU, minLSTM)."""

    gate: Gate = "default"
    """Forget gate: default, ugi (uniform gate initialization, UR paper eq. 9) or ur (UGI + refine gate, eq. 12)."""

    def label(self) -> str:
        return super().label() + ("" if self.gate == "default" else f"+{self.gate}")


def check_gate(gate: str) -> str:
    if gate not in GATES:
        raise SeqRLError(f"Unknown gate {gate!r}: use one of {', '.join(GATES)}.")
    return gate


def uniform_gate_bias(n: int, generator: torch.Generator | None = None) -> Tensor:
    """sigma^-1(u), u ~ U[1/n, 1 - 1/n] (eq. 9 / Listing 2)."""
    u = torch.rand(n, generator=generator) * (1 - 2 / n) + 1 / n
    return torch.log(u) - torch.log1p(-u)


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


class ForgetGate:
    """The forget gate of a scan backbone, f = sigma(k_f), with the options ``default``, ``ugi``, ``ur``.

    It owns no weights: the mixer's input projection produces its logits, ``n_logits`` of
    them per channel (k_f, and k_r for ``ur``), and ``init_`` applies UGI to their biases.
    ``log_pair`` -> (log f_eff, log(1 - f_eff)) (the log-space scan); ``value`` -> f_eff
    (linear space: the native scan and the step); ``activations`` -> what diagnostics plot.
    """

    def __init__(self, gate: str = "default") -> None:
        self.gate = check_gate(gate)
        self.n_logits = 2 if gate == "ur" else 1

    def init_(self, bias: Tensor, d: int) -> None:
        """``bias``: the projection bias whose first ``n_logits * d`` entries are [b_f | b_r]."""
        if self.gate == "default":
            return
        with torch.no_grad():
            b_f = uniform_gate_bias(d).to(bias)
            bias[:d].copy_(b_f)
            if self.gate == "ur":
                bias[d : 2 * d].copy_(-b_f)  # Listing 2: b_r = -b_f
        bias._no_reinit = True  # type: ignore[attr-defined]  # a re-initialization (init: gpt) keeps it

    def log_pair(self, k: list[Tensor]) -> tuple[Tensor, Tensor]:
        return log_sigmoid_pair(k[0]) if self.gate != "ur" else log_refine(k[0], k[1])

    def logit(self, k: list[Tensor]) -> Tensor:
        """The logit of f_eff (f_eff = sigmoid(logit)): k_f, or log g - log(1 - g) for ``ur``."""
        if self.gate != "ur":
            return k[0]
        log_g, log_1mg = log_refine(k[0], k[1])
        return log_g - log_1mg

    def value(self, k: list[Tensor]) -> Tensor:
        f = torch.sigmoid(k[0])
        return f if self.gate != "ur" else refine(f, torch.sigmoid(k[1]))

    def activations(self, k: list[Tensor]) -> dict[str, Tensor]:
        out = {"forget": torch.sigmoid(k[0])}
        if self.gate == "ur":
            out["effective"] = self.value(k)
        return out

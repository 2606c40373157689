"""The protocol every sequence backbone implements (after state-spaces/s4 ``SequenceModule``).

A backbone maps a token sequence ``x`` of shape (B, T, D) to outputs of the same
shape. Its state is always passed in and returned, never hidden inside the module:

- ``forward(x, state=None) -> (y, state)``: a whole sequence (the parallel path
  used in training); ``state=None`` means "from the initial state".
- ``step(x_t, state) -> (y_t, state)``: one token of shape (B, D) (the O(1) path
  used when acting).
- ``initial_state(batch) -> state``.

Contract (tested for every registered backbone, in float64): a full forward
equals a step loop and equals chunked forwards with the state carried, and the
forward is causal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

State = Any  # a tensor, or a tuple of them (one per layer); opaque to callers


@dataclass(frozen=True)
class BackboneConfig:
    """What every backbone is built from."""

    d_model: int = 128
    n_layers: int = 3
    dropout: float = 0.1
    n_heads: int = 1  # attention backbones only
    max_tokens: int = 59  # attention span in tokens (attention backbones only)
    gate: str = "default"  # gated scan backbones: "default", "ugi" or "ur" (see gates.py)
    d_state: int = 16  # state size per channel (SSM backbones)
    dt_min: float = 1e-3  # SSM step-size init range (s4d, mamba)
    dt_max: float = 1e-1
    scan: str = "auto"  # scan backbones: "auto", "native" (C loop, CPU) or "log" (log-space, any device)


class Backbone(nn.Module, ABC):
    """Base class: subclasses implement ``forward`` and ``initial_state``."""

    registry_name: str = ""
    options: tuple[str, ...] = ()  # BackboneConfig options it reads (set by ``register_backbone``)
    constant_state: bool = True  # the state has a fixed size (an O(1) recurrent step); False: it grows

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg

    @abstractmethod
    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """x: (B, T, D) -> y: (B, T, D), and the state after the last token."""

    @abstractmethod
    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """The state before the first token, for a batch of ``batch`` sequences."""

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t: (B, D) -> y_t: (B, D). Default: a forward over a length-1 sequence."""
        y, state = self.forward(x_t[:, None], state)
        return y[:, 0], state

    def _param_like(self) -> Tensor:
        return next(self.parameters())

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
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

State = Any  # a tensor, or a tuple of them (one per layer); opaque to callers


@dataclass(frozen=True)
class BackboneOptions:
    """A backbone's own hyperparameters: subclass it as a frozen dataclass beside the backbone and register
    it with the backbone (``@register_backbone("name", options=NameOptions)``). Each field becomes the flag
    ``--name.field`` and the config key ``name: {field: ...}``; its docstring is the flag's help. A backbone
    with no hyperparameter of its own has none (this empty base).

    Shared choices are mixins defined once (``gates.GateOption``, ``scan.ScanOption``, ``ssm.SSMOptions``);
    each may extend ``rules`` (value checks) and ``label`` (what the run's name says about it)."""

    def rules(self, width: int) -> list[tuple[str, bool, str]]:
        """(field, ok, what it must be) per value check, given the backbone width (before any work)."""
        return []

    def label(self) -> str:
        """The run-label suffix of these values (e.g. ``+ur``); empty at the defaults and for unlabelled options."""
        return ""


@dataclass(frozen=True)
class BackboneConfig:
    """What every backbone is built from: the common sizes and the backbone's own options (given by the model,
    ``seqrl.agents.model.ModelConfig.backbone_config``, whose defaults are the only ones)."""

    width: int  # D, the token width
    n_layers: int
    dropout: float
    max_tokens: int  # the longest context a token sees (set by the model: 3K - 1); attention's span
    options: BackboneOptions | None = None  # an instance of the backbone's options class; None: its defaults


class Backbone(nn.Module, ABC):
    """Base class: subclasses implement ``forward`` and ``initial_state``."""

    registry_name: str = ""
    options_class: type[BackboneOptions] = BackboneOptions  # set by ``register_backbone``
    constant_state: bool = True  # the state has a fixed size (an O(1) recurrent step); False: it grows

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        options = self.options_class() if cfg.options is None else cfg.options
        if type(options) is not self.options_class:
            raise TypeError(f"backbone {self.registry_name!r} takes {self.options_class.__name__}, "
                            f"got {type(options).__name__}")
        self.cfg = replace(cfg, options=options)

    @property
    def options(self) -> Any:
        """This backbone's options (an instance of ``options_class``)."""
        return self.cfg.options

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

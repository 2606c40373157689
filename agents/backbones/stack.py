"""The block wrapper shared by every backbone: pre-norm residual mixer + MLP (GPT-2 style).

    x = x + Dropout(Mixer(LayerNorm(x)))
    x = x + Dropout(MLP(LayerNorm(x)))          MLP: D -> 4D -> GELU -> D

``ResidualStack`` stacks ``n_layers`` such blocks and a final LayerNorm. A
backbone only says how to build one mixer (a layer with the same
forward/step/initial_state protocol); the stack carries one state per layer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Backbone, BackboneConfig, State


class Mixer(nn.Module, ABC):
    """A sequence-mixing layer: (B, T, D) -> (B, T, D), same state protocol as a backbone. ``forward`` and
    ``initial_state`` are abstract: a subclass that lacks one cannot be instantiated."""

    residual_out: str | None = None
    """Name of the Linear layer whose output is the mixer's output (what GPT-2's init scales), if any."""

    @abstractmethod
    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """x: (B, T, D) -> y: (B, T, D), and the state after the last token."""

    @abstractmethod
    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> State:
        """The state before the first token, for ``batch`` sequences."""

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.forward(x_t[:, None], state)
        return y[:, 0], state


class Dropout(nn.Module):
    """nn.Dropout with a cheaper CPU mask: ``rand >= p`` instead of ``bernoulli_``.

    Same distribution (each element kept with probability 1 - p, scaled by 1 / (1 - p)).
    On the CPU, ``bernoulli_`` costs about 4x ``rand_like`` + compare (bench/, profile of
    an update: dropout was ~13% of a Transformer update); elsewhere ``F.dropout`` is used.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        keep = torch.rand_like(x) >= self.p
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MLP(nn.Sequential):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), Dropout(dropout)
        )


class ResidualBlock(nn.Module):
    def __init__(self, mixer: Mixer, width: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.mixer = mixer
        self.drop = Dropout(dropout)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, dropout)

    def forward(self, x: Tensor, state: State | None = None, keep: slice | None = None) -> tuple[Tensor, State]:
        """``keep``: only these positions' outputs are wanted: the MLP (position-wise) runs at them alone."""
        h, state = self.mixer(self.norm1(x), state)
        x = x + self.drop(h)
        if keep is not None:
            x = x[:, keep]
        return x + self.mlp(self.norm2(x)), state

    def residual_projections(self) -> list[nn.Linear]:
        """The Linear layers that write into the residual stream: the mixer's output and the MLP's last."""
        mixer_out = [getattr(self.mixer, self.mixer.residual_out)] if self.mixer.residual_out else []
        return mixer_out + [self.mlp[2]]

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        h, state = self.mixer.step(self.norm1(x_t), state)
        x_t = x_t + self.drop(h)
        return x_t + self.mlp(self.norm2(x_t)), state


class ResidualStack(Backbone):
    """``n_layers`` residual blocks around mixers made by ``make_mixer``; state = one per layer."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(
            ResidualBlock(self.make_mixer(self.cfg), cfg.width, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.norm_f = nn.LayerNorm(cfg.width)

    @abstractmethod
    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        """One layer's sequence mixer (its options: ``self.options``)."""

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[State, ...]:
        p = self._param_like()
        device, dtype = device or p.device, dtype or p.dtype
        return tuple(blk.mixer.initial_state(batch, device, dtype) for blk in self.blocks)

    def forward(
        self, x: Tensor, state: tuple[State, ...] | None = None, keep: slice | None = None
    ) -> tuple[Tensor, tuple[State, ...]]:
        """``keep``: return only these positions (B, T', D); the last block's MLP and the final norm, which act
        per position, then run at them alone (training reads 1 token in 3: about 2/3 of the last MLP saved)."""
        states = state if state is not None else (None,) * len(self.blocks)
        new_states = []
        for i, (blk, s) in enumerate(zip(self.blocks, states)):
            x, s = blk(x, s, keep if i == len(self.blocks) - 1 else None)
            new_states.append(s)
        return self.norm_f(x), tuple(new_states)

    @torch.no_grad()
    def gate_activations(self, x: Tensor) -> dict[str, Tensor]:
        """Gate activations per layer, ``{"layer0/forget": ...}``, for mixers that define
        ``activations(x)`` (diagnostics, UR paper fig. 4); empty for the others."""
        out: dict[str, Tensor] = {}
        for i, blk in enumerate(self.blocks):
            acts = getattr(blk.mixer, "activations", None)
            if acts is not None:
                out.update({f"layer{i}/{k}": v for k, v in acts(blk.norm1(x)).items()})
            x, _ = blk(x)
        return out

    def step(self, x_t: Tensor, state: tuple[State, ...]) -> tuple[Tensor, tuple[State, ...]]:
        new_states = []
        for blk, s in zip(self.blocks, state):
            x_t, s = blk.step(x_t, s)
            new_states.append(s)
        return self.norm_f(x_t), tuple(new_states)

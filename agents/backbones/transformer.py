"""Causal GPT-style self-attention, as in Decision Transformer (Chen et al. 2021).

Positions: DT gives its tokens the episode's timestep through a learned embedding (the model's, not the
backbone's) and no position of its own (its GPT-2 has no ``wpe``). Without that embedding (the CPU protocol's
``--no-time-embedding``) order reaches attention only through the causal mask: with one layer the last token's
output is the same for any permutation of the earlier ones. ``pos: rope`` rotates queries and keys by their position in the pass
(RoFormer, Su et al. 2021, eq. 34), so a logit depends on the tokens and their offset i - j only (eq. 16): the
same in a window re-run at every step as in one pass over the sequence.

Attention spans at most ``max_tokens`` tokens (the current one included). The
state is the buffer of the last ``max_tokens - 1`` block inputs; ``step`` re-runs
attention over buffer + new token, which is exactly DT's evaluation (a sliding
KV cache is not equivalent once there is more than one layer). ``forward`` with
a state equals that step loop for any number of new tokens; ``forward`` without
a state equals it while the sequence fits in the span (beyond, each token still
attends to at most ``max_tokens`` tokens, but deeper layers see further back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig, BackboneOptions
from .registry import register_backbone
from .stack import Mixer, ResidualStack


Position = Literal["none", "rope"]
POSITIONS: tuple[str, ...] = get_args(Position)


@dataclass(frozen=True)
class TransformerOptions(BackboneOptions):
    """Options of --backbone transformer."""

    n_heads: int = 1
    """Attention heads (must divide --width)."""
    pos: Position = "none"
    """Positions in attention: none (order only via the causal mask) or rope (rotary, RoFormer eq. 34)."""

    def rules(self, width: int) -> list[tuple[str, bool, str]]:
        head = width // max(self.n_heads, 1)
        return [*super().rules(width),
                ("n_heads", self.n_heads >= 1 and width % max(self.n_heads, 1) == 0, f">= 1 and divide --width ({width})"),
                ("pos", self.pos in POSITIONS and (self.pos != "rope" or head % 2 == 0),
                 f"one of {', '.join(POSITIONS)}; rope needs an even head width (--width / n_heads, here {head})")]

    def label(self) -> str:
        return super().label() + ("" if self.pos == "none" else f"+{self.pos}")


def rotary_angles(t: int, d: int, like: Tensor, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin of m * theta_i for positions m = 0..t-1, theta_i = base^(-2i/d) (RoFormer eq. 34), each
    (T, d/2) in ``like``'s dtype and device; computed in at least float32."""
    dtype = torch.promote_types(like.dtype, torch.float32)
    theta = base ** (-torch.arange(0, d, 2, device=like.device, dtype=dtype) / d)  # (d/2,)
    angle = torch.arange(t, device=like.device, dtype=dtype)[:, None] * theta  # (T, d/2)
    return angle.cos().to(like.dtype), angle.sin().to(like.dtype)


def rotary(x: Tensor, angles: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Rotate each feature pair (x_2i, x_2i+1) of the token at position m by m * theta_i (RoFormer eq. 34).
    x: (B, H, T, d), d even; ``angles``: ``rotary_angles`` for x's T and d (computed here if not given)."""
    cos, sin = angles if angles is not None else rotary_angles(x.shape[-2], x.shape[-1], x)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)  # (B, H, T, d)


def banded_causal_mask(t: int, span: int, device: torch.device) -> Tensor:
    """(t, t) bool, True where query i may attend key j: i - span < j <= i."""
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(t, device=device)[None, :]
    return (j <= i) & (j > i - span)


class CausalSelfAttention(Mixer):
    """Multi-head causal attention; stateless (the Transformer backbone keeps the token buffer)."""

    residual_out = "proj"

    def __init__(self, width: int, n_heads: int, dropout: float, span: int, pos: Position = "none") -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.n_heads, self.span, self.dropout, self.rope = n_heads, span, dropout, pos == "rope"
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        return None

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if self.rope:  # positions 0..t-1 of this pass; only their offsets reach the logits
            angles = rotary_angles(t, q.shape[-1], q)  # once for both
            q, k = rotary(q, angles), rotary(k, angles)
        p = self.dropout if self.training else 0.0
        if t <= self.span:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            mask = banded_causal_mask(t, self.span, x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(b, t, d)), None  # (B, T, D)


@register_backbone("transformer", options=TransformerOptions)
class Transformer(ResidualStack):
    """GPT blocks; state = the last ``max_tokens - 1`` inputs, shape (B, n, D)."""

    constant_state = False  # the buffer grows to max_tokens - 1 tokens

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return CausalSelfAttention(cfg.width, self.options.n_heads, cfg.dropout, cfg.max_tokens, self.options.pos)

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        p = self._param_like()
        return torch.zeros(batch, 0, self.cfg.width, device=device or p.device, dtype=dtype or p.dtype)

    def forward(self, x: Tensor, state: Tensor | None = None, keep: slice | None = None) -> tuple[Tensor, Tensor]:
        """Without a state: one causal pass, each token attending to at most ``max_tokens``.
        With a state: exactly the step loop, i.e. each new token's output is a fresh pass over
        the last ``max_tokens`` tokens ending at it (one batched pass when they all fit).
        ``keep`` (no state only): return only these positions (see ``ResidualStack.forward``)."""
        b, t, d = x.shape
        span = self.cfg.max_tokens
        if keep is not None:
            if state is not None and state.shape[1]:
                raise ValueError("keep= is for a pass from the initial state (training)")
            return super().forward(x, keep=keep)[0], x[:, -(span - 1) :] if span > 1 else x[:, :0]
        if state is None or state.shape[1] == 0:
            ctx = x
            y, _ = super().forward(ctx)  # (B, T, D)
        else:
            ctx = torch.cat([state, x], dim=1)  # (B, n, D), the last T are new
            n, first = ctx.shape[1], ctx.shape[1] - t
            parts = []
            if first < span:  # new tokens at positions < span: their windows start at 0, one causal pass
                parts.append(super().forward(ctx[:, : min(n, span)])[0][:, first:])
            rest = max(first, span)
            if rest < n:  # the others: a window of ``span`` tokens ending at each, batched (B * m, span, D)
                win = ctx[:, rest - span + 1 :].unfold(1, span, 1).transpose(2, 3)  # (B, m, span, D)
                m = win.shape[1]
                parts.append(super().forward(win.reshape(b * m, span, d))[0][:, -1].reshape(b, m, d))
            y = torch.cat(parts, dim=1)
        return y[:, -t:], ctx[:, -(span - 1) :] if span > 1 else ctx[:, :0]

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        y, state = self.forward(x_t[:, None], state)
        return y[:, 0], state

"""Causal GPT-style self-attention, as in Decision Transformer (Chen et al. 2021).

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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig, BackboneOptions
from .registry import register_backbone
from .stack import Mixer, ResidualStack


@dataclass(frozen=True)
class TransformerOptions(BackboneOptions):
    """Options of --backbone transformer."""

    n_heads: int = 1
    """Attention heads (must divide --width)."""

    def rules(self, width: int) -> list[tuple[str, bool, str]]:
        return [*super().rules(width),
                ("n_heads", self.n_heads >= 1 and width % max(self.n_heads, 1) == 0, f">= 1 and divide --width ({width})")]


def banded_causal_mask(t: int, span: int, device: torch.device) -> Tensor:
    """(t, t) bool, True where query i may attend key j: i - span < j <= i."""
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(t, device=device)[None, :]
    return (j <= i) & (j > i - span)


class CausalSelfAttention(Mixer):
    """Multi-head causal attention; stateless (the Transformer backbone keeps the token buffer)."""

    residual_out = "proj"

    def __init__(self, width: int, n_heads: int, dropout: float, span: int) -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.n_heads, self.span, self.dropout = n_heads, span, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        return None

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
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
        return CausalSelfAttention(cfg.width, self.options.n_heads, cfg.dropout, cfg.max_tokens)

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

"""torch's fused nn.GRU / nn.LSTM as the classic sequential baselines (the minRNN paper's comparison)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import BackboneConfig
from .registry import register_backbone
from .stack import Mixer, ResidualStack


class TorchRNNLayer(Mixer):
    """One nn.GRU or nn.LSTM layer. State: h (1, B, D) for GRU, (h, c) for LSTM."""

    def __init__(self, d_model: int, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = cell(d_model, d_model, batch_first=True)
        self.d_model, self.is_lstm = d_model, cell is nn.LSTM

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype):
        z = torch.zeros(1, batch, self.d_model, device=device, dtype=dtype)
        return (z, z.clone()) if self.is_lstm else z

    def forward(self, x: Tensor, state=None):
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN's bf16 RNN needs AVX-512 (it fails without); the cell runs in float32 inside CPU autocast
            with torch.autocast("cpu", enabled=False):
                return self.rnn(x.float(), state)
        return self.rnn(x, state)  # (B, T, D), state


@register_backbone("gru")
class GRU(ResidualStack):
    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return TorchRNNLayer(cfg.d_model, nn.GRU)


@register_backbone("lstm")
class LSTM(ResidualStack):
    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return TorchRNNLayer(cfg.d_model, nn.LSTM)

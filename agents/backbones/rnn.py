"""torch's fused nn.GRU / nn.LSTM as the classic sequential baselines (the minRNN paper's comparison).

Inside ``plain_ops()`` the same layer runs as its cell equations (torch's gate order and
weights, a loop over T), which an ONNX or TorchScript graph holds as plain ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import BackboneConfig
from .plain import plain_ops_active
from .registry import register_backbone
from .stack import Mixer, ResidualStack


class TorchRNNLayer(Mixer):
    """One nn.GRU or nn.LSTM layer. State: h (1, B, D) for GRU, (h, c) for LSTM."""

    def __init__(self, width: int, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = cell(width, width, batch_first=True)
        self.width, self.is_lstm = width, cell is nn.LSTM

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype):
        z = torch.zeros(1, batch, self.width, device=device, dtype=dtype)
        return (z, z.clone()) if self.is_lstm else z

    def forward(self, x: Tensor, state=None):
        if plain_ops_active():
            return self._cell_loop(x, state if state is not None else self.initial_state(x.shape[0], x.device, x.dtype))
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN's bf16 RNN needs AVX-512 (it fails without); the cell runs in float32 inside CPU autocast
            with torch.autocast("cpu", enabled=False):
                return self.rnn(x.float(), state)
        return self.rnn(x, state)  # (B, T, D), state

    def _cell_loop(self, x: Tensor, state):
        """nn.GRU / nn.LSTM (torch's documented equations and gate order) as a loop over T."""
        r = self.rnn
        gi = F.linear(x, r.weight_ih_l0, r.bias_ih_l0)  # (B, T, G * D), every step at once
        h, c = (state[0][0], state[1][0]) if self.is_lstm else (state[0], None)  # (B, D)
        hs = []
        for gi_t in gi.unbind(1):
            gh = F.linear(h, r.weight_hh_l0, r.bias_hh_l0)
            if self.is_lstm:  # gates i, f, g, o
                i, f, g, o = (gi_t + gh).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:  # gates r, z, n
                i_r, i_z, i_n = gi_t.chunk(3, dim=-1)
                h_r, h_z, h_n = gh.chunk(3, dim=-1)
                rg, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                h = (1 - z) * torch.tanh(i_n + rg * h_n) + z * h
            hs.append(h)
        new = (h[None], c[None]) if self.is_lstm else h[None]
        return torch.stack(hs, dim=1), new


@register_backbone("gru")
class GRU(ResidualStack):
    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return TorchRNNLayer(cfg.width, nn.GRU)


@register_backbone("lstm")
class LSTM(ResidualStack):
    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return TorchRNNLayer(cfg.width, nn.LSTM)

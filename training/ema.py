"""An exponential moving average of a model's weights (Polyak averaging), bias-corrected.

With decay d and the weights p_1, p_2, ... after each update, the average after t updates is

    avg_t = sum_i (1 - d) d^(t - i) p_i / (1 - d^t)

(an EMA started from zero, divided by the weight it has accumulated, as Adam corrects its moments),
so no trace of the initial weights remains. Computed in place as
avg_t = avg_{t-1} + w_t (p_t - avg_{t-1}),  w_t = (1 - d) / (1 - d^t)  (w_1 = 1: avg_1 = p_1).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)  # holds the averaged weights
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold in ``model``'s current weights (call after each optimizer step)."""
        self.updates += 1
        w = (1.0 - self.decay) / (1.0 - self.decay**self.updates)
        avg, cur = list(self.model.parameters()), [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(avg, cur, w)
        for b_avg, b in zip(self.model.buffers(), model.buffers()):
            b_avg.copy_(b)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["model"])

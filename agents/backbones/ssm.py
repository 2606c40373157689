"""What the state space backbones (S4D, Mamba) share: the state size and the step-size initialization.

Both draw their initial step sizes Delta log-uniformly from [dt_min, dt_max] (S4D, Gu et al. 2022, sec. 3;
Mamba, Gu & Dao 2023, sec. 3.6), i.e. time scales 1 / Delta from 1 / dt_max to 1 / dt_min steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import BackboneOptions


@dataclass(frozen=True)
class SSMOptions(BackboneOptions):
    """The options of a diagonal SSM: its state size and the initial step-size range."""

    d_state: int = 16
    """State size per channel (s4d: complex modes N; mamba: N)."""
    dt_min: float = 1e-3
    """Smallest initial step size Delta (log Delta ~ U[log dt_min, log dt_max])."""
    dt_max: float = 1e-1
    """Largest initial step size Delta. The default 1e-3..1e-1 suits sequences of thousands of steps."""

    def rules(self, width: int) -> list[tuple[str, bool, str]]:
        return [*super().rules(width), ("d_state", self.d_state >= 1, ">= 1"),
                ("dt_min", 0 < self.dt_min < self.dt_max, f"> 0 and below dt_max ({self.dt_max:g})")]

    def label(self) -> str:
        default = SSMOptions()
        same = (self.dt_min, self.dt_max) == (default.dt_min, default.dt_max)
        return super().label() + ("" if same else f"+dt{self.dt_min:g}-{self.dt_max:g}")


def init_log_dt(n: int, dt_min: float, dt_max: float) -> Tensor:
    """log Delta for n step sizes, log Delta ~ U[log dt_min, log dt_max]: (n,)."""
    return torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)

"""GPT-2's initialization (Radford et al. 2019; nanoGPT, minGPT and CORL's DT use it).

Linear and Embedding weights ~ N(0, 0.02), Linear biases 0, LayerNorm weight 1 and bias 0; then
the Linear layers that write into the residual stream (each block's mixer output and MLP output)
~ N(0, 0.02 / sqrt(2 n_layers)), so that the residual stream's variance does not grow with depth
(2 n_layers residual additions). Biases marked ``_no_reinit`` (Mamba's convention: a backbone's
special initialization, e.g. UGI forget-gate biases, Mamba's Delta bias) are kept, and so are the
parameters of other layers (RNN cells, convolutions, SSM parameters).
"""

from __future__ import annotations

import math

from torch import nn

from seqrl.agents.backbones.stack import ResidualBlock

GPT_STD = 0.02


def gpt_init_(model: nn.Module, std: float = GPT_STD) -> None:
    """Re-initialize ``model`` in place as GPT-2 (see the module docstring)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            bias = getattr(m, "bias", None)
            if bias is not None and not getattr(bias, "_no_reinit", False):
                nn.init.zeros_(bias)
        elif isinstance(m, nn.LayerNorm) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    for blk in blocks:
        for proj in blk.residual_projections():
            nn.init.normal_(proj.weight, 0.0, std / math.sqrt(2 * len(blocks)))

"""Writes format-2 checkpoints into the folder given (default: this one): run it with the seqrl of commit 373e4ac
importable (format 2, the last one whose ModelConfig and TrainConfig held every backbone option as a flat field).
tests/test_migration.py does so in a temporary folder, with that commit's code taken from git:
python tests/data/format2/make.py OUT_DIR

The config-*.yaml files are run configs as that code saved them (config-ab-mingru.yaml: copied from a real A/B run,
with the older bf16 key too). Each .pt file is a checkpoint as train_offline.py wrote it then (``model_config(cfg, ...)``, ``build_model``,
``save_checkpoint``) for one backbone with non-default options, plus ``test_inputs`` and ``test_outputs``: a
batch and the actions the old code predicted for it (eval mode), which tests/test_migration.py compares with the
model the current code rebuilds.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from seqrl.agents.checkpoint import CHECKPOINT_FORMAT, AgentBundle, save_checkpoint
from seqrl.agents.kinds import build_model, model_config
from seqrl.config import TrainConfig
from seqrl.datasets import DatasetInfo

assert CHECKPOINT_FORMAT == 2, f"run with the format-2 code (commit 373e4ac), not format {CHECKPOINT_FORMAT}"
HERE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
OPTIONS = {  # the flags a run of each backbone would have been given
    "transformer": {"n_heads": 2},
    "mingru": {"gate": "ur", "scan": "log"},
    "minlstm": {"gate": "ugi"},
    "urlstm": {},
    "s4d": {"d_state": 4, "dt_min": 0.01, "dt_max": 1.0},
    "mamba": {"d_state": 4, "dt_min": 0.01, "dt_max": 0.5},
    "gru": {},
    "lstm": {},
}
INFO = DatasetInfo("test/hopper/medium-v0", "minari", "-", "hopper", "Hopper-v5", "", -20.272305, 3234.3)

for backbone, options in OPTIONS.items():
    torch.manual_seed(0)
    cfg = TrainConfig(backbone=backbone, width=8, n_layers=2, context_len=3, max_ep_len=50, **options)
    model = build_model("dt", model_config(cfg, 3, 2)).eval()
    g = torch.Generator().manual_seed(1)
    inputs = (torch.randn(2, 3, 1, generator=g), torch.randn(2, 3, 3, generator=g),
              torch.rand(2, 3, 2, generator=g) * 2 - 1, torch.tensor([[0, 1, 2], [7, 8, 9]]))
    with torch.no_grad():
        outputs = model(*inputs)
    bundle = AgentBundle(model, np.zeros(3), np.ones(3), 1000.0, [3600.0, 1800.0], INFO, 5, cfg.to_dict())
    save_checkpoint(HERE / f"{backbone}.pt", bundle, {"test_inputs": inputs, "test_outputs": outputs})
    print(backbone, sum(p.numel() for p in model.parameters()), "parameters")

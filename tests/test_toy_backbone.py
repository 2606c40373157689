"""A backbone with a hyperparameter of its own, defined and registered in this one file, trained through
train_offline.py with that hyperparameter given by its flag (``--toy.decay``).

This file is what a user adding a backbone outside the package writes: an options dataclass, a mixer, and a
registered backbone. Pytest imports it (so the toy is registered in this process); train_offline.py, run as a
subprocess, loads it as a plugin (``SEQRL_PLUGINS=tests/test_toy_backbone.py``). It imports nothing from
the tests folder at its top, so that it also loads outside pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from seqrl.agents.backbones import BackboneConfig, BackboneOptions, register_backbone
from seqrl.agents.backbones.scan import sequential_scan
from seqrl.agents.backbones.stack import Mixer, ResidualStack

HERE = Path(__file__).resolve()


@dataclass(frozen=True)
class ToyOptions(BackboneOptions):
    """Options of --backbone toy."""

    decay: float = 0.5
    """How much of its running average the toy keeps per token: h_t = decay * h_{t-1} + (1 - decay) * W x_t."""

    def rules(self, width: int) -> list[tuple[str, bool, str]]:
        return [*super().rules(width), ("decay", 0 <= self.decay < 1, "in [0, 1)")]

    def label(self) -> str:  # runs that differ in decay get their own names and results rows
        return super().label() + ("" if self.decay == ToyOptions.decay else f"+decay{self.decay:g}")


class ToyLayer(Mixer):
    """An exponential moving average of a projection of the tokens. State: h (B, D)."""

    residual_out = "out"

    def __init__(self, width: int, decay: float) -> None:
        super().__init__()
        self.width, self.decay = width, decay
        self.inp, self.out = nn.Linear(width, width), nn.Linear(width, width)

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.width, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        u = (1 - self.decay) * self.inp(x)  # (B, T, D)
        h = sequential_scan(torch.full_like(u, self.decay), u, state)  # (B, T, D)
        return self.out(h), h[:, -1]


@register_backbone("toy", options=ToyOptions)
class Toy(ResidualStack):
    """Toy layers in the shared residual block."""

    def make_mixer(self, cfg: BackboneConfig) -> Mixer:
        return ToyLayer(cfg.width, self.options.decay)


# ---- the tests --------------------------------------------------------------------------------------------

TINY = ["--env", "hopper", "--dataset", "medium", "--steps", "2", "--eval-every", "2", "--eval-episodes", "1",
        "--context-len", "5", "--width", "16", "--n-layers", "1", "--batch-size", "8", "--warmup-steps", "1",
        "--device", "cpu", "--threads", "1"]


def run(args: list[str], plugin: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEQRL_PLUGINS": str(HERE) if plugin else ""}
    return subprocess.run([sys.executable, *args], cwd=HERE.parents[1], capture_output=True, text=True, env=env,
                          timeout=600)


def test_toy_trains_with_its_own_flag(data_root, tmp_path):
    import yaml

    from seqrl.agents import load_checkpoint

    run_dir = tmp_path / "toy"
    p = run(["train_offline.py", "--backbone", "toy", "--toy.decay", "0.25", "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    assert "agent toy+decay0.25:" in p.stdout  # the run's label says it
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["options"] == {"decay": 0.25}  # the resolved config
    bundle, payload = load_checkpoint(run_dir / "last.pt")  # the checkpoint rebuilds it with the value
    assert payload["step"] == 2 and payload["model_config"]["options"] == {"decay": 0.25}
    assert isinstance(bundle.model.backbone, Toy) and bundle.model.backbone.blocks[0].mixer.decay == 0.25

    p = run(["train_offline.py", "--help"])
    assert p.returncode == 0 and "--toy.decay" in p.stdout and "How much of its running average" in p.stdout
    p = run(["evaluate.py", str(run_dir), "--episodes", "1"], plugin=False)  # without the plugin: says how
    assert p.returncode == 2 and "Unknown backbone 'toy'" in p.stderr and "SEQRL_PLUGINS" in p.stderr


def test_toy_flags_are_checked_like_the_built_in_ones(capsys, tmp_path):
    from test_cli import error_of

    from seqrl.cli.args import parse_train_args
    from seqrl.grid import make_jobs

    assert parse_train_args(["--backbone", "toy", "--toy.decay", "0.1"]).model.options == ToyOptions(decay=0.1)
    (tmp_path / "c.yaml").write_text("env: hopper\ndataset: medium\nbackbone_defaults: {toy: {decay: 0.2}}\n")
    assert parse_train_args(["--config", str(tmp_path / "c.yaml"), "--backbone", "toy"]).model.options == ToyOptions(0.2)
    jobs = make_jobs([tmp_path / "c.yaml"], ["toy"], [0], ["--toy.decay", "0.1"])  # a grid arm over it
    assert [j.prefix for j in jobs] == ["hopper__medium__toy+decay0.1__0__"]
    assert "--toy.decay must be in [0, 1) (got 1.5)" in error_of(
        capsys, "train_offline", ["--backbone", "toy", "--toy.decay", "1.5", "--dataset", "/nonexistent.hdf5"])
    assert "--backbone mingru does not use --toy.decay (options of toy)" in error_of(
        capsys, "train_offline", ["--backbone", "mingru", "--toy.decay", "0.1", "--dataset", "/nonexistent.hdf5"])


@pytest.mark.parametrize("contract", ["test_forward_equals_step_loop", "test_chunked_forward_with_carried_state",
                                      "test_initial_state_equals_no_state", "test_causal", "test_gradients_reach_every_parameter"])
def test_toy_keeps_the_backbone_contract(contract):
    """The contract every registered backbone is tested against (tests/test_backbones.py), on the toy."""
    import inspect

    import test_backbones

    check = getattr(test_backbones, contract)
    check("toy", **({"t": 7} if "t" in inspect.signature(check).parameters else {}))

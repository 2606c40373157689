"""Files written before backbone options lived with their backbones still work: format-2 checkpoints rebuild the
same model (same state_dict keys, same outputs), and run configs with flat option keys load, label, resume and
aggregate as they did. The old checkpoints are written for each test session by the format-2 code itself (commit
373e4ac, taken from git, running tests/data/format2/make.py); the run configs under tests/data/format2 are text
files as that code saved them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from seqrl.agents import load_checkpoint, save_checkpoint
from seqrl.agents.backbones.mamba import MambaOptions
from seqrl.agents.backbones.mingru import MinGRUOptions
from seqrl.agents.backbones.minlstm import MinLSTMOptions
from seqrl.agents.backbones.s4d import S4DOptions
from seqrl.agents.backbones.transformer import TransformerOptions
from seqrl.agents.checkpoint import CHECKPOINT_FORMAT
from seqrl.config import load_yaml_config, parse_train_args
from seqrl.recipe import agent_label

OLD = Path(__file__).parent / "data" / "format2"
FORMAT_2_COMMIT = "373e4ac"  # the last commit that wrote format 2 (flat backbone options)
# the folders of that commit that install under seqrl (its pyproject's package-dir)
LAYOUT = {"seqrl": "seqrl", "agents": "seqrl/agents", "envs": "seqrl/envs", "datasets": "seqrl/datasets"}


@pytest.fixture(scope="module")
def old_ckpts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of checkpoints written by the format-2 code: that commit's package, read from git, runs make.py."""
    root = tmp_path_factory.mktemp("format2")
    repo = Path(__file__).resolve().parents[1]
    known = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", FORMAT_2_COMMIT + "^{commit}"],
                           capture_output=True)
    if known.returncode != 0:  # e.g. a shallow clone or a source tarball: no history to take the old code from
        pytest.skip(f"commit {FORMAT_2_COMMIT} is not in this checkout's git history (a shallow clone?)")
    archive = subprocess.run(["git", "-C", str(repo), "archive", FORMAT_2_COMMIT, *LAYOUT], capture_output=True,
                             timeout=120)
    assert archive.returncode == 0, archive.stderr.decode()[-2000:]
    (root / "old.tar").write_bytes(archive.stdout)
    with tarfile.open(root / "old.tar") as tar:
        tar.extractall(root / "tree", filter="data")
    site = root / "site"
    for src, dst in LAYOUT.items():
        shutil.copytree(root / "tree" / src, site / dst)
    out = root / "ckpt"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the old seqrl, not the installed one
    p = subprocess.run([sys.executable, "-B", str(OLD / "make.py"), str(out)], cwd=root, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return out
SAME = 1e-6  # float32 actions in (-1, 1): a wrong option (heads, gate, d_state, dt range) moves them by far more

# what make.py gave each backbone (flat flags then), as options now, and the run label
EXPECTED = {
    "transformer": (TransformerOptions(n_heads=2), "transformer"),
    "mingru": (MinGRUOptions(gate="ur", scan="log"), "mingru+ur"),
    "minlstm": (MinLSTMOptions(gate="ugi"), "minlstm+ugi"),
    "urlstm": (None, "urlstm"),
    "s4d": (S4DOptions(d_state=4, dt_min=0.01, dt_max=1.0), "s4d+dt0.01-1"),
    "mamba": (MambaOptions(d_state=4, dt_min=0.01, dt_max=0.5), "mamba+dt0.01-0.5"),
    "gru": (None, "gru"),
    "lstm": (None, "lstm"),
}


@pytest.mark.parametrize("backbone", sorted(EXPECTED))
def test_format_2_checkpoints_rebuild_the_same_model(backbone, tmp_path, old_ckpts):
    raw = torch.load(old_ckpts / f"{backbone}.pt", weights_only=False)
    assert raw["format"] == 2 and "gate" in raw["model_config"] and "backbone_options" not in raw["model_config"]
    bundle, payload = load_checkpoint(old_ckpts / f"{backbone}.pt")
    model = bundle.model.eval()
    assert set(model.state_dict()) == set(raw["model"])  # (load_state_dict is strict too)
    options, label = EXPECTED[backbone]
    if options is not None:
        assert model.cfg.backbone_options == options and model.backbone.options == options
    assert agent_label(bundle.config) == label  # the run's saved (flat) config labels as before
    with torch.no_grad():  # what the old code predicted (bit-equal at its thread count; other counts reorder sums)
        torch.testing.assert_close(model(*payload["test_inputs"]), payload["test_outputs"], rtol=0, atol=SAME)

    save_checkpoint(tmp_path / "new.pt", bundle)  # written again: the current format, the same model
    new = torch.load(tmp_path / "new.pt", weights_only=False)
    assert new["format"] == CHECKPOINT_FORMAT == 3
    assert not {"gate", "d_state", "dt_min", "dt_max", "n_heads", "scan"} & set(new["model_config"])
    again, _ = load_checkpoint(tmp_path / "new.pt")
    assert again.model.cfg == model.cfg
    with torch.no_grad():
        torch.testing.assert_close(again.model.eval()(*payload["test_inputs"]), payload["test_outputs"], rtol=0, atol=SAME)


@pytest.mark.parametrize("name, backbone, options, label", [
    ("config-mingru-ur", "mingru", MinGRUOptions(gate="ur"), "mingru+ur"),
    ("config-s4d-dt", "s4d", S4DOptions(d_state=8, dt_min=0.01, dt_max=1.0), "s4d+dt0.01-1"),
    ("config-ab-mingru", "mingru", MinGRUOptions(), "mingru"),  # a real run's, with the older bf16 key too
])
def test_flat_option_configs_load_and_label_as_before(name, backbone, options, label):
    path = OLD / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    cfg = load_yaml_config(path)
    assert cfg.backbone == backbone and cfg.options == options
    assert agent_label(raw) == agent_label(cfg.to_dict()) == label
    saved = cfg.to_dict()  # saved now: the backbone's options under its name, no flat keys
    assert saved[backbone] == {k: getattr(options, k) for k in saved[backbone]}
    assert not {"gate", "d_state", "dt_min", "dt_max", "n_heads", "scan"} & set(saved)


def test_a_run_directory_of_the_old_code_resumes_and_aggregates(tmp_path, old_ckpts):
    """An unfinished run written by the format-2 code: its config.yaml (flat options) and last.pt. --resume reads
    it (only --steps changes), the grid finds it by its prefix, results label it as before."""
    from test_cli import script

    from seqrl import results
    from seqrl.grid import Job, existing

    run = tmp_path / "hopper__medium__mingru+ur__0__1"
    run.mkdir()
    shutil.copy(OLD / "config-mingru-ur.yaml", run / "config.yaml")
    shutil.copy(old_ckpts / "mingru.pt", run / "last.pt")
    (run / "evals.jsonl").write_text('{"step": 3, "results": [{"target": 3600.0, "rollout": "window", '
                                     '"normalized_mean": 5.0, "normalized_std": 1.0}]}\n')
    cfg = parse_train_args(["--resume", str(run), "--steps", "9"])
    assert cfg.options == MinGRUOptions(gate="ur") and cfg.resume == run
    assert script("train_offline").check_resume_request(cfg) == ["--steps: run has 6, given 9"]
    job = Job(OLD / "config-mingru-ur.yaml", "mingru", 0, [])
    assert job.prefix == "hopper__medium__mingru+ur__0__" and existing(tmp_path, job)[0] == run
    (row,) = results.aggregate(results.load_runs([run]))
    assert row["agent"] == "mingru+ur"


def test_nested_and_flat_keys_mix_in_a_config_chain(tmp_path):
    """A base file with a flat key (older) and an arm with the backbone's mapping: per option, the arm wins;
    a flag wins over both."""
    (tmp_path / "base.yaml").write_text("backbone: mingru\ngate: ur\n")
    (tmp_path / "arm.yaml").write_text("base: base.yaml\nmingru: {scan: log}\n")
    cfg = load_yaml_config(tmp_path / "arm.yaml")
    assert cfg.options == MinGRUOptions(gate="ur", scan="log")
    (tmp_path / "arm2.yaml").write_text("base: arm.yaml\nmingru: {gate: ugi}\n")
    assert load_yaml_config(tmp_path / "arm2.yaml").options == MinGRUOptions(gate="ugi", scan="log")
    cfg = parse_train_args(["--config", str(tmp_path / "arm2.yaml"), "--mingru.scan", "native"])
    assert cfg.options == MinGRUOptions(gate="ugi", scan="native")
    cfg = parse_train_args(["--config", str(tmp_path / "arm2.yaml"), "--gate", "default"])  # an older flag
    assert cfg.options == MinGRUOptions(gate="default", scan="log")

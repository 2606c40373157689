"""The behaviour-cloning agent: model, policy, checkpoints, and its place in evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrl.agents import AgentBundle, DecisionModel, ModelConfig, load_checkpoint, save_checkpoint
from seqrl.agents.backbones.options import FLAT_NAMES
from seqrl.agents.bc import BC_ROLLOUT, BCConfig, BCModel, BCPolicy
from seqrl.agents.kinds import evaluation_plan, make_policy
from seqrl.datasets import DatasetInfo
from seqrl.errors import SeqRLError

from seqrl.tasks import TASKS

INFO = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)


def bc_model() -> BCModel:
    torch.manual_seed(0)
    return BCModel(BCConfig(obs_dim=5, act_dim=2, hidden=(8, 8)))


def test_bc_model_is_a_relu_mlp_with_tanh_output():
    m = bc_model()
    assert [type(x).__name__ for x in m.net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Tanh"]
    assert [x.out_features for x in m.net if isinstance(x, torch.nn.Linear)] == [8, 8, 2]
    x = torch.randn(7, 1, 5) * 10
    h = torch.relu(m.net[0](x))
    h = torch.relu(m.net[2](h))
    torch.testing.assert_close(m(x), torch.tanh(m.net[4](h)))
    assert m(x).shape == (7, 1, 2) and m(x).abs().max() < 1
    assert m.cfg.context_len == 1  # trained on single transitions


def test_bc_policy_normalizes_the_observation_and_ignores_targets_and_rewards():
    m = bc_model()
    mean, std = np.arange(5.0), np.full(5, 2.0)
    pol = BCPolicy(m, mean, std)
    obs = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    pol.reset(np.full(3, np.nan))
    a1 = pol.act(obs)
    pol.observe(np.ones(3))
    a2 = pol.act(obs)
    expected = m(torch.as_tensor((obs - mean) / std, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(a1, expected, rtol=1e-6)
    np.testing.assert_array_equal(a1, a2)  # no state: the same observation gives the same action


def test_bc_is_evaluated_once_without_target_and_refuses_rollout_modes():
    m = bc_model()
    assert evaluation_plan(m, [3600.0, 1800.0], ["window", "recurrent"]) == [(BC_ROLLOUT, None)]
    with pytest.raises(SeqRLError, match="acts on the current state alone"):
        make_policy(m, np.zeros(5), np.ones(5), 1.0, "window", "cpu")
    dt = DecisionModel(ModelConfig(obs_dim=5, act_dim=2, width=8, n_layers=1, context_len=4))
    assert evaluation_plan(dt, [3600.0, 1800.0], ["window"]) == [("window", 3600.0), ("window", 1800.0)]


def test_bc_checkpoint_round_trip_and_old_dt_checkpoints_still_load(tmp_path):
    m = bc_model()
    save_checkpoint(tmp_path / "bc.pt", AgentBundle(m, np.zeros(5), np.ones(5), 1.0, [], INFO, 3, {"agent": "bc"}))
    loaded, payload = load_checkpoint(tmp_path / "bc.pt")
    assert payload["agent"] == "bc" and isinstance(loaded.model, BCModel) and loaded.model.cfg == m.cfg
    x = torch.randn(4, 5)
    assert torch.equal(loaded.model(x), m(x))

    dt = DecisionModel(ModelConfig(obs_dim=5, act_dim=2, width=8, n_layers=1, context_len=4))
    save_checkpoint(tmp_path / "dt.pt", AgentBundle(dt, np.zeros(5), np.ones(5), 1.0, [1.0], INFO, 0, {}))
    payload = torch.load(tmp_path / "dt.pt", weights_only=False)
    del payload["agent"]  # written before BC existed
    payload["format"] = 2  # whose model config held the backbone options as flat fields, every one ...
    options = payload["model_config"].pop("backbone_options")  # (options added since, e.g. pos, it never had)
    payload["model_config"].update({k: v for k, v in options.items() if k in FLAT_NAMES},
                                   gate="default", d_state=16, scan="auto")  # ... but dt_min, dt_max (later)
    torch.save(payload, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert isinstance(loaded.model, DecisionModel) and loaded.model.cfg == dt.cfg

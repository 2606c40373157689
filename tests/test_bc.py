"""The behaviour-cloning agent: model, policy, checkpoints, and its place in evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrl.agents import AgentBundle, DecisionModel, ModelConfig, load_checkpoint, save_checkpoint
from seqrl.agents.bc import BC_ROLLOUT, BCConfig, BCModel, BCPolicy
from seqrl.agents.kinds import evaluation_plan, make_policy
from seqrl.datasets import DatasetInfo
from seqrl.core.errors import SeqRLError

from seqrl.core.tasks import TASKS

INFO = DatasetInfo("x", "d4rl", "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)


def bc_model() -> BCModel:
    torch.manual_seed(0)
    return BCConfig(hidden=(8, 8)).create(5, 2)


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
    dt = ModelConfig(width=8, n_layers=1, context_len=4).create(5, 2)
    assert evaluation_plan(dt, [3600.0, 1800.0], ["window"]) == [("window", 3600.0), ("window", 1800.0)]


def test_bc_checkpoint_round_trip(tmp_path):
    m = bc_model()
    save_checkpoint(tmp_path / "bc.pt", AgentBundle(m, np.zeros(5), np.ones(5), 1.0, [], INFO, 3, {"agent": "bc"}))
    loaded, payload = load_checkpoint(tmp_path / "bc.pt")
    assert payload["agent"] == "bc" and isinstance(loaded.model, BCModel) and loaded.model.cfg == m.cfg
    x = torch.randn(4, 5)
    assert torch.equal(loaded.model(x), m(x))


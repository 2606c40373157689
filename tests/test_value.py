"""The agents that learn a value: the in-sample critic (IQL's losses against hand-computed numbers), the
transitions the sampler gives them (against hand-computed arrays), the value-guided Decision agent's candidate
selection (step by step against one policy per candidate), and IQL / the value-guided agent end to end."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from seqrl.agents.critic import Critic, CriticConfig, expectile_loss
from seqrl.agents.policy import SequencePolicy
from seqrl.agents.value_dt import ValueConfig, ValueDecisionConfig, ValueDecisionModel
from seqrl.agents.model import ModelConfig
from seqrl.core.batch import WindowBatch
from seqrl.datasets import WindowSampler
from seqrl.training.optim import make_optimizer

from helpers import REPO
from test_cli import TINY, error_of, run
from test_data import hand_dataset


def test_expectile_loss_by_hand():
    # L2^tau(u) = |tau - 1(u < 0)| u^2: tau 0.7 weighs a positive error 0.7, a negative one 0.3
    np.testing.assert_allclose(expectile_loss(torch.tensor([-2.0, 1.0, 0.0]), 0.7).numpy(), [1.2, 0.7, 0.0])


def constant_critic(q: float, v: float) -> Critic:
    """A critic whose every Q (and target Q) says ``q`` and whose V says ``v`` whatever the input."""
    critic = Critic(CriticConfig(hidden=(4,), expectile=0.7, discount=0.99), obs_dim=2, act_dim=1)
    with torch.no_grad():
        for net, value in [(critic.q[0], q), (critic.q[1], q), (critic.q_target[0], q), (critic.q_target[1], q),
                           (critic.v, v)]:
            for p in net.parameters():
                p.zero_()
            net[-1].bias.fill_(value)
    return critic


def test_critic_losses_by_hand():
    critic = constant_critic(q=2.0, v=1.0)
    z = torch.zeros(1, 3, 2)
    batch = WindowBatch(rtg=torch.zeros(1, 3, 1), states=z, actions=torch.zeros(1, 3, 1),
                        timesteps=torch.zeros(1, 3, dtype=torch.long), mask=torch.ones(1, 3, dtype=torch.bool),
                        rewards=torch.tensor([[1.0, 2.0, 3.0]]), next_states=z,
                        terminals=torch.tensor([[False, False, True]]), td_mask=torch.tensor([[True, False, True]]))
    loss, logs = critic.losses(batch)
    # targets r + 0.99 (1 - d) V(s') = 1.99, (2.99, not learned from), 3 (terminal); Q = 2 for both twins
    td = ((2 - 1.99) ** 2 + (2 - 3) ** 2) / 2
    v = 0.7 * (2 - 1) ** 2  # the expectile of min Q_target - V = +1
    assert logs["critic/td_loss"].item() == pytest.approx(td)
    assert logs["critic/v_loss"].item() == pytest.approx(v)
    assert loss.item() == pytest.approx(td + v)
    assert logs["critic/q_data"].item() == pytest.approx(2.0) and logs["critic/v"].item() == pytest.approx(1.0)
    assert critic.advantage(z, torch.zeros(1, 3, 1)).tolist() == [[1.0, 1.0, 1.0]]


def test_the_target_critic_follows_by_soft_updates_and_the_actor_term_trains_only_the_actions():
    critic = constant_critic(q=2.0, v=1.0)
    with torch.no_grad():
        critic.q[0][-1].bias.fill_(4.0)
    critic.soft_update()  # theta' <- 0.995 theta' + 0.005 theta
    assert critic.q_target[0][-1].bias.item() == pytest.approx(2.0 + 0.005 * 2.0)
    actions = torch.zeros(3, 1, requires_grad=True)
    critic.q_frozen(torch.randn(3, 2), actions).sum().backward()
    assert actions.grad is not None and all(p.grad is None for p in critic.parameters())


def test_sampler_transitions_by_hand():
    # hand_dataset: A = rows 0-2 (terminated at 2), B = 3-4 (timeout at 4), C = 5-6 (data ends); states row r =
    # [2r, 2r + 1], rewards r + 1
    s = WindowSampler(hand_dataset(), 4, np.zeros(2, np.float32), np.ones(2, np.float32), 10.0, 1000, reward_scale=0.5)
    b = s.gather(*s.windows(np.array([1, 5, 3])))  # A from t=1, C from t=0, B from t=0
    np.testing.assert_allclose(b.rewards.numpy(), [[1, 1.5, 0, 0], [3, 3.5, 0, 0], [2, 2.5, 0, 0]])
    np.testing.assert_array_equal(b.next_states[:, :2].numpy(), [[[4, 5], [0, 0]], [[12, 13], [0, 0]], [[8, 9], [0, 0]]])
    assert b.terminals.tolist() == [[False, True, False, False], [False] * 4, [False] * 4]
    # learned from: a row with s_{t+1} in the data, or one that ended by termination; not a timeout's or the
    # data's last row (their s_{t+1} is not kept), nor padding
    assert b.td_mask.tolist() == [[True, True, False, False], [True, False, False, False], [True, False, False, False]]
    plain = WindowSampler(hand_dataset(), 4, np.zeros(2, np.float32), np.ones(2, np.float32), 10.0, 1000)
    assert plain.gather(*plain.windows(np.array([1]))).rewards is None  # only the value-learning kinds pay for them


def test_a_critics_parameters_keep_their_own_rate_no_decay_and_no_clipping():
    model = small_vdt(candidates=1)
    opt = make_optimizer(model, lr=1e-4, weight_decay=0.1, groups=True, device=torch.device("cpu"))
    critic = {id(p) for p in [*model.critic.q.parameters(), *model.critic.v.parameters()]}
    target = {id(p) for p in model.critic.q_target.parameters()}
    for g in opt.param_groups:
        ids = {id(p) for p in g["params"]}
        assert not ids & target  # the target critic is not trained
        if ids & critic:
            assert ids <= critic and g["lr"] == 3e-4 and g["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(1 for p in model.parameters() if p.requires_grad)


def small_vdt(candidates: int, rollout_dtype: torch.dtype = torch.float32, **value) -> ValueDecisionModel:
    torch.manual_seed(0)
    cfg = ValueDecisionConfig(ModelConfig(backbone="mingru", width=16, n_layers=2, context_len=8, dropout=0.0),
                              ValueConfig(candidates=candidates, jitter=0.2, critic=CriticConfig(hidden=(16,)), **value))
    return cfg.create(3, 2).to(rollout_dtype)


@pytest.mark.parametrize("rollout", ["recurrent", "window"])
def test_candidates_act_as_one_policy_per_target_the_critic_choosing(rollout):
    """C candidates in one batch = C policies, one per target (x 0.8, 1, 1.2), each told the action taken; the
    action taken is the one the critic values most. Float64, so the comparison is exact to rounding."""
    model = small_vdt(candidates=1, rollout_dtype=torch.float64)
    mean, std = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 0.5])
    singles = [SequencePolicy(model, mean, std, 100.0, rollout) for _ in range(3)]  # built with C = 1
    model.value_cfg = dataclasses.replace(model.value_cfg, candidates=3)
    policy = SequencePolicy(model, mean, std, 100.0, rollout)
    targets = np.array([300.0, 120.0])
    policy.reset(targets)
    for p, u in zip(singles, [0.8, 1.0, 1.2]):
        p.reset(targets * u)
    rng = np.random.default_rng(0)
    picks = []
    for _ in range(6):
        obs = rng.normal(size=(2, 3))
        action = policy.act(obs)
        cands = np.stack([p.act(obs) for p in singles], 1)  # (N, C, act)
        s = torch.as_tensor((obs - mean) / std)[:, None].expand(2, 3, 3)
        q = model.critic.q_values(s, torch.as_tensor(cands))
        pick = q.argmax(-1).numpy()
        np.testing.assert_allclose(action, cands[np.arange(2), pick], rtol=1e-6, atol=1e-7)
        picks += pick.tolist()
        rewards = rng.normal(size=2)
        policy.observe(rewards)
        for p in singles:
            p.observe(rewards, actions=action)
    assert policy.chosen_shares() == pytest.approx(np.bincount(picks, minlength=3) / len(picks))


def test_one_candidate_acts_as_the_decision_model():
    model = small_vdt(candidates=1)
    policy = SequencePolicy(model, np.zeros(3), np.ones(3), 100.0, "recurrent")
    policy.reset(np.array([200.0]))
    obs = np.ones((1, 3), np.float32)
    s = torch.ones(1, 3)
    action, _ = model.step(torch.tensor([2.0]), s, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long),
                           model.initial_state(1))
    np.testing.assert_allclose(policy.act(obs), action.detach().numpy(), rtol=1e-6)
    assert policy.chosen_shares() == []


def test_value_guided_agent_trains_logs_its_critic_and_evaluates_with_candidates(data_root, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "vdt"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--agent", "vdt", "--backbone", "mingru",
             "--value.candidates", "3", "--value.critic.hidden", "16", "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    assert "agent mingru+value-q+cand3" in p.stdout
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["agent"] == "vdt" and cfg["value"]["candidates"] == 3 and cfg["value"]["critic"]["hidden"] == [16]
    r = json.loads((run_dir / "evals.jsonl").read_text().splitlines()[-1])["results"][0]
    assert len(r["chosen"]) == 3 and sum(r["chosen"]) == pytest.approx(1.0)
    tags = set(EventAccumulator(str(run_dir)).Reload().Tags()["scalars"])
    assert {"critic/td_loss", "critic/v_loss", "critic/q_data", "critic/v", "critic/q_actor_minus_data",
            "losses/action_mse", "losses/actor", "eval/chosen_share_window_3600/candidate0"} <= tags

    out = tmp_path / "eval.json"
    p = run(["evaluate.py", str(run_dir), "--episodes", "1", "--targets", "500", "--rollout", "recurrent",
             "--candidates", "1", "--json", str(out), "--device", "cpu"])
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["results"][0]["chosen"] == []  # 1 candidate: the target alone
    p = run(["evaluate.py", str(run_dir), "--episodes", "1", "--targets", "500", "--device", "cpu"])
    assert p.returncode == 0 and "chosen candidate, % (low → high target) |" in p.stdout

    before = (run_dir / "last.pt").read_bytes()
    err = error_of(capsys, "export", [str(run_dir), "--out", str(tmp_path / "p.onnx")])
    assert "selects among 3 return-to-go candidates" in err and "--value.candidates 1" in err
    assert not (tmp_path / "p.onnx").exists() and (run_dir / "last.pt").read_bytes() == before


def test_iql_trains_checkpoints_and_evaluates_as_bc_does(data_root, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "iql"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--agent", "iql", "--iql.hidden", "16",
             "--iql.critic.hidden", "16", "--steps", "6", "--eval-every", "3", "--eval-episodes", "1",
             "--batch-size", "8", "--log-every", "2", "--device", "cpu", "--run-dir", str(run_dir)])
    assert p.returncode == 0, p.stderr
    done = json.loads((run_dir / "done.json").read_text())
    assert done["agent"] == "iql" and done["targets"] == []
    tags = set(EventAccumulator(str(run_dir)).Reload().Tags()["scalars"])
    assert {"critic/td_loss", "critic/weight_mean", "losses/actor", "eval/normalized_score_state"} <= tags
    p = run(["evaluate.py", str(run_dir), "--episodes", "2", "--device", "cpu"])
    assert p.returncode == 0 and "| - | state | 2 |" in p.stdout
    err = error_of(capsys, "evaluate", [str(run_dir), "--targets", "500", "--device", "cpu"])
    assert "This is a run of the IQL agent (--agent iql): it takes no target return" in err
    err = error_of(capsys, "evaluate", [str(run_dir), "--candidates", "3", "--device", "cpu"])
    assert "--candidates is for value-guided runs (--agent vdt)" in err and "run of the IQL agent" in err
    err = error_of(capsys, "export", [str(run_dir), "--out", str(tmp_path / "p.onnx")])
    assert "is a run of the IQL agent (--agent iql); export.py exports the Decision model's policies only" in err


def test_value_settings_on_an_agent_that_does_not_read_them_are_refused(data_root, capsys):
    err = error_of(capsys, "train_offline", ["--env", "hopper", "--dataset", "medium", "--agent", "dt", "--backbone",
                                             "mingru", "--value.eta", "2", *TINY])
    assert "--agent dt does not use --value.eta; they are settings of other kinds (--value.eta: --agent vdt)" in err
    err = error_of(capsys, "train_offline", ["--env", "hopper", "--dataset", "medium", "--agent", "iql",
                                             "--value.candidates", "3", "--backbone", "mingru", "--steps", "4"])
    assert "--agent iql does not use --backbone, --value.candidates (it acts on the current state" in err
    assert "(--backbone: --agent dt / vdt; --value.candidates: --agent vdt)" in err


def test_a_value_guided_run_with_one_candidate_exports_and_acts_as_evaluated(data_root, tmp_path):
    run_dir, onnx = tmp_path / "vdt1", tmp_path / "p.onnx"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--agent", "vdt", "--backbone", "mingru",
             "--value.guide", "awr", "--value.critic.hidden", "16", "--run-dir", str(run_dir), *TINY])
    assert p.returncode == 0, p.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set(EventAccumulator(str(run_dir)).Reload().Tags()["scalars"])
    assert {"critic/weight_mean", "critic/q_actor_minus_data"} <= tags  # awr's weights; Q(s, a^) - Q(s, a) either way
    p = run(["export.py", str(run_dir), "--format", "onnx", "--rollout", "recurrent", "--out", str(onnx)])
    assert p.returncode == 0, p.stderr
    outs = []
    for args in ([str(run_dir), "--rollout", "recurrent"], ["--policy", str(onnx)]):
        out = tmp_path / f"{len(outs)}.json"
        p = run(["evaluate.py", *args, "--episodes", "1", "--targets", "500", "--json", str(out), "--device", "cpu"])
        assert p.returncode == 0, p.stderr
        outs.append(json.loads(out.read_text())["results"][0])
    assert outs[0]["lengths"] == outs[1]["lengths"] and outs[0]["returns"] == pytest.approx(outs[1]["returns"], rel=1e-3)


def test_a_value_guided_run_takes_an_iql_runs_critic_and_holds_it_fixed(data_root, d4rl_file, tmp_path, capsys):
    """--critic-from: the finished IQL run of the dataset and seed in a folder of runs, its critic copied and never
    trained (bit-identical after training, no TD loss logged, its Q still shown); each wrong source refused before
    any run directory is made, saying what differs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs, vdt = tmp_path / "runs", tmp_path / "vdt"
    p = run(["train_offline.py", "--env", "hopper", "--dataset", "medium", "--agent", "iql", "--iql.hidden", "16",
             "--iql.critic.hidden", "16", "--steps", "4", "--eval-every", "4", "--eval-episodes", "1", "--batch-size",
             "8", "--device", "cpu", "--run-dir", str(runs / "hopper__medium__iql__0__1")])
    assert p.returncode == 0, p.stderr
    flags = ["--env", "hopper", "--dataset", "medium", "--agent", "vdt", "--backbone", "mingru", *TINY]
    p = run(["train_offline.py", *flags, "--value.critic.hidden", "16", "--critic-from", str(runs), "--run-dir", str(vdt)])
    assert p.returncode == 0, p.stderr
    assert "agent mingru+value-q+fixed-critic" in p.stdout
    assert f"[seqrl] critic: the finished IQL run of seed 0 in {runs}: {runs}/hopper__medium__iql__0__1/last.pt (iql run, update 4), held fixed" in p.stdout
    source = torch.load(runs / "hopper__medium__iql__0__1" / "last.pt", weights_only=False)["model"]
    trained = torch.load(vdt / "last.pt", weights_only=False)["model"]
    critic = [k for k in source if k.startswith("critic.")]
    assert critic and all(torch.equal(trained[k], source[k]) for k in critic)
    tags = set(EventAccumulator(str(vdt)).Reload().Tags()["scalars"])
    assert {"critic/q_data", "critic/v", "critic/q_actor_minus_data", "losses/actor"} <= tags and "critic/td_loss" not in tags

    for extra, message in [
        (["--value.critic.hidden", "16", "--seed", "1"], "no finished IQL run of 'test/hopper/medium-v0' with seed 1 there"),
        (["--value.critic.hidden", "32"], "its critic has hidden layers [16] on 11 state features, this run's [32] on 11; "
                                          "give --value.critic.hidden 16"),
        (["--value.critic.hidden", "16", "--val-fraction", "0.5"], "its states were normalized with other statistics"),
    ]:
        err = error_of(capsys, "train_offline", [*flags, *extra, "--critic-from", str(runs), "--run-dir", str(tmp_path / "x")])
        assert message in err, err
    other = [*flags[:2], "--dataset", str(d4rl_file), *flags[4:], "--value.critic.hidden", "16"]
    err = error_of(capsys, "train_offline", [*other, "--critic-from", str(runs / "hopper__medium__iql__0__1"),
                                             "--run-dir", str(tmp_path / "x")])
    assert "its critic learned on 'test/hopper/medium-v0'" in err and "A critic guides only on its own data" in err
    err = error_of(capsys, "train_offline", ["--env", "hopper", "--dataset", "medium", "--backbone", "mingru",
                                             "--critic-from", str(runs), *TINY])
    assert "--agent dt does not use --critic-from" in err
    assert not (tmp_path / "x").exists()


def test_the_shipped_value_guided_configs_take_the_critic_of_an_iql_run_under_runs(data_root, tmp_path, capsys,
                                                                                   monkeypatch):
    """configs/cpu/vdt-<task>.yaml hold an IQL run's critic fixed (docs/recipe.md, "which critic"), found under
    runs/: without one there the run is refused before its directory is made, saying how to train one or to learn
    the critic alongside (--critic-from None, the A/Bs' arms before that verdict)."""
    from seqrl.grid import make_jobs

    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs/cpu/vdt-hopper-medium.yaml")
    err = error_of(capsys, "train_offline", ["--config", config, "--backbone", "mingru", *TINY, "--run-dir", "x"])
    assert ("--critic-from runs: no such run directory, checkpoint or folder of runs. Train one first (python "
            "train_offline.py --config configs/cpu/iql-<task>.yaml --seed 0), give a run directory, or --critic-from "
            "None to learn the critic alongside.") in err
    (tmp_path / "runs").mkdir()
    err = error_of(capsys, "train_offline", ["--config", config, "--backbone", "mingru", *TINY, "--seed", "2"])
    assert "--critic-from runs: no finished IQL run of 'test/hopper/medium-v0' with seed 2 there" in err
    assert not (tmp_path / "x").exists() and not list((tmp_path / "runs").iterdir())
    for flags, label in (([], "mingru+value-q+fixed-critic+no-time"), (["--critic-from", "None"], "mingru+value-q+no-time")):
        job = make_jobs([REPO / "configs/cpu/vdt-hopper-medium.yaml"], ["mingru"], [0], flags)[0]
        assert job.cfg.label() == label

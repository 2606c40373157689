"""The recipe options of issue 12, each doing what it says: weight EMA, decay / no-decay parameter groups,
GPT-2 initialization, targets from the data, the SSM step-size range; and the checks and labels around them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from seqrl.agents import DecisionModel, ModelConfig, load_checkpoint
from seqrl.cli.args import load_config, parse_train_args
from seqrl.training.ema import EMA
from seqrl.training.gpt_init import gpt_init_
from seqrl.training.optim import decay_groups, make_optimizer
from seqrl.training.trainer import Trainer, resolve_targets
from seqrl.training.config import TrainConfig, check_config
from seqrl.datasets import DatasetInfo, TrajectoryDataset
from seqrl.core.errors import SeqRLError
from seqrl.core.tasks import TASKS, get_task

from helpers import backbone_options


def dataset(returns_per_episode=(1.0, 2.0, 3.0, 10.0), length=6, name="local/hopper/medium-v0", source="minari"):
    """Episodes of ``length`` steps whose rewards sum to the given returns (obs 5-d, actions 2-d)."""
    rng = np.random.default_rng(0)
    info = DatasetInfo(name, source, "-", "hopper", "Hopper-v5", "", *TASKS["hopper"].ref_scores)
    eps = [(rng.normal(size=(length, 5)), rng.uniform(-1, 1, (length, 2)), np.full(length, r / length), False)
           for r in returns_per_episode]
    return TrajectoryDataset.from_episodes(eps, info)


def tiny(backbone: str, **options) -> DecisionModel:
    torch.manual_seed(0)
    return ModelConfig(backbone=backbone, width=16, n_layers=1, context_len=4,
                                     options=backbone_options(backbone, **options)).create(5, 2)


# ---- EMA ------------------------------------------------------------------------------------------------

def test_ema_is_the_bias_corrected_average_by_hand():
    lin = nn.Linear(1, 1, bias=False)
    ema = EMA(lin, decay=0.5)
    for w in (1.0, 2.0, 4.0):
        lin.weight.data.fill_(w)
        ema.update(lin)
    # sum_i (1 - d) d^(t - i) p_i / (1 - d^t) with d = 1/2, t = 3: (1 * 1 + 2 * 2 + 4 * 4) / 7 = 3
    assert ema.model.weight.item() == pytest.approx(3.0)
    assert ema.updates == 3 and lin.weight.item() == 4.0  # the trained weights are untouched


def test_trainer_evaluates_and_checkpoints_the_ema_and_resumes_it(tmp_path):
    data = dataset()
    cfg = TrainConfig(env="hopper", model=ModelConfig(backbone="mingru", context_len=4, width=16, n_layers=1), batch_size=4, steps=3,
                      warmup_steps=0, ema_decay=0.9, device="cpu")
    tr = Trainer(cfg, data, [10.0], torch.device("cpu"), tmp_path)
    seen = []
    for _ in range(3):
        tr.update()
        seen.append([p.detach().clone() for p in tr.model.parameters()])
    d = 0.9
    weights = [(1 - d) * d ** (3 - i) / (1 - d**3) for i in (1, 2, 3)]
    expected = [sum(w * s[j] for w, s in zip(weights, seen)) for j in range(len(seen[0]))]
    for p, e in zip(tr.bundle().model.parameters(), expected):  # what evaluation acts with
        torch.testing.assert_close(p, e, rtol=1e-5, atol=1e-6)
    tr.save("last.pt")
    loaded, payload = load_checkpoint(tmp_path / "last.pt")
    for p, e in zip(loaded.model.parameters(), expected):  # evaluate.py rebuilds the average
        torch.testing.assert_close(p, e, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(payload["raw_model"][k], v) for k, v in tr.model.state_dict().items())
    again = Trainer(cfg, data, [10.0], torch.device("cpu"), tmp_path)
    again.restore(payload)
    assert again.ema.updates == 3
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), tr.model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(again.ema.model.parameters(), tr.ema.model.parameters()))


# ---- held-out episodes (--val-fraction) -------------------------------------------------------------------

def test_split_holds_out_whole_episodes_by_hand():
    data = dataset(returns_per_episode=(1.0, 2.0, 3.0, 10.0), length=3)
    sub = data.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.observations, np.concatenate([data.observations[6:9], data.observations[0:3]]))
    np.testing.assert_array_equal(sub.starts, [0, 3])
    np.testing.assert_allclose(sub.episode_returns(), [3.0, 1.0], rtol=1e-6)
    kept, held = data.split(0.25, seed=0)
    assert (kept.num_episodes, held.num_episodes) == (3, 1)
    returns = sorted(kept.episode_returns().round(4).tolist() + held.episode_returns().round(4).tolist())
    assert returns == [1.0, 2.0, 3.0, 10.0]  # a partition of the episodes
    again = data.split(0.25, seed=0)[1]
    np.testing.assert_array_equal(again.observations, held.observations)  # the seed fixes the draw
    assert data.split(0.99, seed=0)[0].num_episodes == 1  # at least one episode stays for training
    with pytest.raises(SeqRLError, match="nothing to hold out"):
        dataset(returns_per_episode=(1.0,)).split(0.5, seed=0)


def test_trainer_trains_without_the_held_out_episodes_and_logs_both_losses(tmp_path):
    data = dataset(returns_per_episode=(1.0, 2.0, 3.0, 10.0), length=6)
    cfg = TrainConfig(env="hopper", model=ModelConfig(backbone="mingru", context_len=4, width=16, n_layers=1), batch_size=4, steps=2,
                      warmup_steps=0, val_fraction=0.25, device="cpu")
    tr = Trainer(cfg, data, [10.0], torch.device("cpu"), tmp_path)
    held = {round(r, 4) for r in tr.val_data.episode_returns()}
    assert tr.train_data.num_episodes == 3 and not held & {round(r, 4) for r in tr.train_data.episode_returns()}
    assert (tr.sampler.n, data.num_transitions) == (18, 24)  # the update samples the 3 kept episodes only
    np.testing.assert_allclose(tr.obs_mean, tr.train_data.observations.mean(0), rtol=1e-5)
    losses = tr.probe_losses()
    assert set(losses) == {"val", "train_probe"} and all(np.isfinite(v) and v > 0 for v in losses.values())
    # by hand: the held-out windows' MSE, dropout off, equals what probe_losses reports
    b = tr.probes["val"]
    tr.model.eval()
    with torch.no_grad():
        pred = tr.model(*tr.model.batch_inputs(b))
    sq = ((pred - b.actions) ** 2).mean(-1)
    assert losses["val"] == pytest.approx(float((sq * b.mask).sum() / b.mask.sum()), rel=1e-5)
    tr.model.train()
    tr.probe_losses()
    assert tr.model.training  # probe_losses turns dropout off only while it measures
    assert cfg.label() == "mingru+val0.25"


# ---- decay groups ---------------------------------------------------------------------------------------

def test_decay_groups_of_the_transformer_model_by_hand():
    decay, no_decay = decay_groups(tiny("transformer"))
    blk = "backbone.blocks.0."
    assert sorted(decay) == sorted([
        "embed_return.weight", "embed_state.weight", "embed_action.weight",
        blk + "mixer.qkv.weight", blk + "mixer.proj.weight", blk + "mlp.0.weight", blk + "mlp.2.weight",
        "action_head.0.weight",
    ])
    assert "embed_timestep.weight" in no_decay and "embed_norm.weight" in no_decay and blk + "norm1.bias" in no_decay
    assert sorted(decay + no_decay) == sorted(n for n, _ in tiny("transformer").named_parameters())


@pytest.mark.parametrize("backbone, no_decay_params, decay_params", [
    ("s4d", ["log_dt", "log_A_re", "A_im", "C", "D", "out.bias"], ["out.weight"]),
    ("mamba", ["A_log", "D", "dt_proj.bias", "conv.bias"], ["in_proj.weight", "conv.weight", "x_proj.weight",
                                                           "dt_proj.weight", "out_proj.weight"]),
    ("gru", ["rnn.bias_ih_l0", "rnn.bias_hh_l0"], ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]),
])
def test_ssm_and_rnn_parameters_land_in_the_right_group(backbone, no_decay_params, decay_params):
    decay, no_decay = decay_groups(tiny(backbone))
    mixer = "backbone.blocks.0.mixer."
    assert {mixer + n for n in no_decay_params} <= set(no_decay)
    assert {mixer + n for n in decay_params} <= set(decay)
    assert not set(decay) & set(no_decay)


def test_optimizer_groups_carry_the_weight_decay():
    m = tiny("mingru")
    opt = make_optimizer(m, 1e-3, 0.1, True, torch.device("cpu"))
    decay, no_decay = decay_groups(m)
    params = dict(m.named_parameters())
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(params[n]) for n in decay]
    assert [id(p) for p in opt.param_groups[1]["params"]] == [id(params[n]) for n in no_decay]
    (single,) = make_optimizer(m, 1e-3, 0.1, False, torch.device("cpu")).param_groups  # off: today's optimizer
    assert single["weight_decay"] == 0.1 and len(single["params"]) == len(params)


# ---- GPT init -------------------------------------------------------------------------------------------

def test_gpt_init_statistics():
    torch.manual_seed(0)
    m = ModelConfig(backbone="transformer", width=128, n_layers=3).create(11, 3)
    gpt_init_(m)
    residual = {f"backbone.blocks.{i}.{n}" for i in range(3) for n in ("mixer.proj.weight", "mlp.2.weight")}
    for name, p in m.named_parameters():
        if name in residual:
            assert p.std().item() == pytest.approx(0.02 / math.sqrt(6), rel=0.05), name
        elif name.endswith("weight") and ("norm" in name):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("weight") and p.numel() > 1000:  # Linear and Embedding weights large enough to measure
            assert p.std().item() == pytest.approx(0.02, rel=0.05), name
            assert abs(p.mean().item()) < 0.002, name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name


@pytest.mark.parametrize("backbone, kept", [
    ("mamba", ["dt_proj.bias", "A_log", "D", "conv.weight"]),
    ("mingru", ["in_proj.bias"]),  # UGI / refine gate biases (gate ur)
    ("s4d", ["log_dt", "A_im", "C", "D"]),
    ("urlstm", ["input.bias"]),
])
def test_gpt_init_keeps_special_initializations(backbone, kept):
    m = tiny(backbone, gate="ur" if backbone == "mingru" else "default")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    gpt_init_(m)
    after = m.state_dict()
    mixer = "backbone.blocks.0.mixer."
    for n in kept:
        assert torch.equal(before[mixer + n], after[mixer + n]), n
    assert not torch.equal(before["embed_state.weight"], after["embed_state.weight"])  # the rest is re-initialized


# ---- targets from the data ------------------------------------------------------------------------------

def test_targets_from_data_rule_on_a_hand_made_dataset():
    data = dataset((1.0, 2.0, 3.0, 10.0))  # local (Minari) data: not D4RL's own
    hopper = get_task("hopper")
    cfg = TrainConfig(targets_from_data=True, data_target_quantiles=[1.0, 0.5])
    targets, how = resolve_targets(cfg, hopper, data)
    assert targets == pytest.approx([10.0, 2.5]) and "from the data" in how  # best episode; median of 1, 2, 3, 10
    assert resolve_targets(TrainConfig(), hopper, data)[0] == [3600.0, 1800.0]  # off: DT's constants
    d4rl = dataset((1.0, 2.0), name="hopper-medium-v2", source="d4rl")
    targets, how = resolve_targets(cfg, hopper, d4rl)
    assert targets == [3600.0, 1800.0] and "D4RL's own" in how  # DT's constants stay for D4RL's data
    file_named = dataset((1.0, 2.0), name="hopper_medium_replay-v2", source="d4rl")  # D4RL's own file name
    assert resolve_targets(cfg, hopper, file_named)[0] == [3600.0, 1800.0]
    assert resolve_targets(TrainConfig(agent="bc"), hopper, data)[0] == []
    assert resolve_targets(TrainConfig(eval_targets=[5.0]), hopper, data)[0] == [5.0]


# ---- SSM step-size range --------------------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi", [(1e-3, 1e-1), (0.01, 1.0)])
def test_ssm_step_size_range_reaches_s4d_and_mamba(lo, hi):
    import torch.nn.functional as F

    for backbone in ("s4d", "mamba"):
        layer = tiny(backbone, dt_min=lo, dt_max=hi, d_state=4).backbone.blocks[0].mixer
        dt = layer.log_dt.exp() if backbone == "s4d" else F.softplus(layer.dt_proj.bias)
        assert lo * (1 - 1e-5) <= dt.min().item() and dt.max().item() <= hi * (1 + 1e-5), backbone
        assert dt.max().item() > math.sqrt(lo * hi) > dt.min().item()  # log-uniform: spread over the range


# ---- checks and labels ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    ({"agent": "bc", "model": {"backbone": "mingru"}}, "--agent bc does not use --backbone"),
    ({"agent": "bc", "model": {"tokens": "fused"}}, "--agent bc does not use --tokens"),
    ({"agent": "bc", "eval_targets": [3600.0], "rollout": ["recurrent"]}, "--eval-targets, --rollout"),
    ({"agent": "bc", "model": {"options": {"pos": "rope"}}}, "--agent bc does not use --transformer.pos"),
    ({"bc": {"hidden": [64]}}, "--agent dt does not use --bc.hidden"),
    ({"bc": {"hidden": []}}, "--bc.hidden must be one positive width per hidden layer"),
    ({"model": {"backbone": "s4d", "options": {"dt_min": 0.5, "dt_max": 0.1}}}, "--s4d.dt-min must be > 0 and below dt_max (0.1)"),
    ({"model": {"width": 0, "dropout": 1.0}, "grad_clip": -1.0}, "--width must be >= 1 (got 0); --dropout must be in [0, 1)"),
    ({"targets_from_data": True, "eval_targets": [1.0]}, "use one of the two"),
    ({"data_target_quantiles": [0.5]}, "only applies with --targets-from-data"),
    ({"targets_from_data": True, "data_target_quantiles": [1.5]}, "quantiles in [0, 1]"),
    ({"ema_decay": 1.0}, "--ema-decay must be in [0, 1)"),
    ({"val_fraction": 1.0}, "--val-fraction must be the share of episodes held out, in [0, 1)"),
    ({"tag": "a/b"}, "goes into run directory names"),
])
def test_ignored_or_contradictory_settings_are_refused(kw, message):
    with pytest.raises(SeqRLError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_config(TrainConfig.from_dict(kw, "test"))


def test_an_unknown_or_ill_typed_key_is_refused_naming_it():
    with pytest.raises(SeqRLError, match=r"test: model: unknown config key\(s\) 'widht' \(did you mean 'width'\?\)"):
        TrainConfig.from_dict({"model": {"widht": 3}}, "test")
    with pytest.raises(SeqRLError, match=r"test: unknown config key\(s\) 'width' \(did you mean model: \{width: ...\}\?\)"):
        TrainConfig.from_dict({"width": 3}, "test")  # the model's fields are under model:
    with pytest.raises(SeqRLError, match="steps: 'many' is not an integer"):
        TrainConfig.from_dict({"steps": "many"}, "test")


def test_the_saved_config_rebuilds_the_config():
    cfg = parse_train_args(["--backbone", "s4d", "--s4d.dt-min", "0.01", "--width", "64", "--ema-decay", "0.9",
                            "--eval-targets", "100", "--seed", "3"])
    assert TrainConfig.from_dict(cfg.to_dict(), "saved") == cfg
    assert cfg.model.create(5, 2).cfg == cfg.model  # and the model config rebuilds the model
    bc = parse_train_args(["--agent", "bc", "--bc.hidden", "32", "16"])
    assert TrainConfig.from_dict(bc.to_dict(), "saved") == bc and bc.bc.hidden == (32, 16)


def test_config_file_extends_its_base(tmp_path):
    (tmp_path / "base.yaml").write_text("env: walker2d\nsteps: 100\nmodel: {width: 64, n_layers: 2}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "arm.yaml").write_text("base: ../base.yaml\nsteps: 200\nema_decay: 0.99\nmodel: {n_layers: 1}\n")
    cfg = load_config(tmp_path / "sub" / "arm.yaml")
    assert (cfg.env, cfg.steps, cfg.model.width, cfg.model.n_layers, cfg.ema_decay) == ("walker2d", 200, 64, 1, 0.99)
    assert cfg.config == tmp_path / "sub" / "arm.yaml"
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(SeqRLError, match="loops back"):
        load_config(tmp_path / "loop.yaml")


def test_backbone_defaults_apply_to_the_backbone_trained_only(tmp_path):
    f = tmp_path / "protocol.yaml"
    f.write_text("steps: 10\nbackbone_defaults:\n  transformer: {pos: rope}\n  mingru: {gate: ur}\n")
    assert load_config(f).model.options.pos == "rope"  # the default backbone, transformer
    assert parse_train_args(["--config", str(f)]).model.options.pos == "rope"
    assert parse_train_args(["--config", str(f), "--transformer.pos", "none"]).model.options.pos == "none"  # flags win
    mingru = parse_train_args(["--config", str(f), "--backbone", "mingru"])
    assert (mingru.model.backbone, mingru.model.options.gate) == ("mingru", "ur")  # transformer's entry ignored
    gru = parse_train_args(["--config", str(f), "--backbone", "gru"])
    assert gru.label() == "gru" and "backbone_defaults" not in gru.to_dict()
    saved = parse_train_args(["--config", str(f)])
    assert saved.to_dict()["model"]["options"]["pos"] == "rope" and saved.label() == "transformer+rope"
    # the file's own options win over its defaults, option by option
    (tmp_path / "arm.yaml").write_text("base: protocol.yaml\nmodel: {options: {n_heads: 2}}\n")
    arm = load_config(tmp_path / "arm.yaml")
    assert (arm.model.options.pos, arm.model.options.n_heads) == ("rope", 2)
    (tmp_path / "own.yaml").write_text("base: protocol.yaml\nmodel: {options: {pos: none}}\n")
    assert load_config(tmp_path / "own.yaml").model.options.pos == "none"
    # BC reads no backbone: the defaults do not make it refuse the file
    assert parse_train_args(["--config", str(f), "--agent", "bc"]).agent == "bc"
    # a file's options are its backbone's: another --backbone is refused, saying what to do
    with pytest.raises(SeqRLError, match="model.options are transformer's, but --backbone mingru is trained"):
        parse_train_args(["--config", str(tmp_path / "own.yaml"), "--backbone", "mingru"])


@pytest.mark.parametrize("text, message", [
    ("backbone_defaults: [rope]", "backbone_defaults must map a backbone to its options"),
    ("backbone_defaults: {transfomer: {pos: rope}}", "names transfomer, which has no options"),
    ("backbone_defaults: {gru: {}}", "names gru, which has no options"),
    ("backbone_defaults: {mingru: {pos: rope}}", "pos"),  # an option mingru does not have, though not trained
    ("backbone_defaults: {transformer: {pos: alibi}}", "alibi"),
])
def test_backbone_defaults_are_checked_for_every_backbone_named(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text + "\n")
    for backbone in ("transformer", "gru"):  # whichever backbone is trained
        with pytest.raises(SeqRLError, match=message):
            parse_train_args(["--config", str(f), "--backbone", backbone])


def test_options_of_another_backbone_are_refused():
    with pytest.raises(SeqRLError, match="--backbone mingru does not use --s4d.dt-min"):
        parse_train_args(["--backbone", "mingru", "--s4d.dt-min", "0.01"])


def label(**kw) -> str:
    return TrainConfig.from_dict(kw, "test").label()


def test_agent_labels():
    assert label(model={"backbone": "mingru"}) == "mingru"
    assert label(model={"backbone": "mingru", "options": {"gate": "ur"}}, ema_decay=0.999, decay_groups=True,
                 init="gpt") == "mingru+ur+ema0.999+decay-groups+init-gpt"
    assert label(agent="bc") == "bc"
    assert label(model={"backbone": "s4d", "options": {"dt_min": 0.01, "dt_max": 1.0}}) == "s4d+dt0.01-1"
    assert label(targets_from_data=True, data_target_quantiles=[1.0, 0.5], tag="x") == "transformer+data-targets-q1_0.5+x"
    assert label(model={"backbone": "mamba", "options": {"dt_min": 0.01, "dt_max": 1.0}}) == "mamba+dt0.01-1"
    assert label(model={"backbone": "minlstm", "options": {"gate": "ugi"}}) == "minlstm+ugi"
    # the tags keep their order whatever group holds the field
    assert label(model={"backbone": "mingru", "time_embedding": False}, ema_decay=0.999) == "mingru+ema0.999+no-time"
    assert label(model={"backbone": "mingru", "time_embedding": False, "tokens": "fused"}, val_fraction=0.1) == (
        "mingru+no-time+fused+val0.1")
    assert label(model={"backbone": "mingru", "tokens": "interleaved"}) == "mingru"  # the default: no tag


def test_every_shipped_config_loads_and_passes_the_checks():
    from helpers import REPO

    files = sorted((REPO / "configs").glob("*/*.yaml"))
    for kind in ("bc", "iql", "vdt"):  # A/B arms: flags in studies/*.yaml
        assert len([f for f in files if f.name.startswith(f"{kind}-")]) == 9, kind
    for f in files:
        cfg = parse_train_args(["--config", str(f), *(["--backbone", "s4d"] if "s4d" in f.name else [])])
        check_config(cfg)
        kind = f.name.split("-")[0]
        assert cfg.agent == (kind if kind in ("bc", "iql", "vdt") else "dt"), f

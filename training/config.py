"""The run config: one schema for every run, its defaults written once (the paper protocol, Chen et al. 2021).

``TrainConfig`` nests the config that rebuilds the agent's model: ``model`` (the Decision model,
``seqrl.agents.model.ModelConfig``) or ``bc`` (``seqrl.agents.bc.BCConfig``), whichever ``agent`` says. What
the rest of seqrl needs to know about a field lives on the field (``seqrl.core.typed.setting``): its range
(``rule``), its tag in the run's agent label (``label``), whether it may change on ``--resume``
(``on_resume``) and which agent kinds read it (``agents``). ``to_dict`` / ``from_dict`` are the saved form
(``config.yaml``, checkpoints); reading config files and the command line is ``seqrl.cli.args``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

from seqrl.agents.backbones import available_backbones
from seqrl.agents.bc import BCConfig
from seqrl.agents.iql import IQLConfig
from seqrl.agents.kinds import AGENTS, agent_kind
from seqrl.agents.model import ModelConfig
from seqrl.agents.value_dt import ValueConfig
from seqrl.agents.policy import Rollout
from seqrl.core.errors import RETURNS_RULE, SEED_RULE, SeqRLError, check_flags, flag, returns_ok, seed_ok
from seqrl.core.typed import facts, from_mapping, rule_problems, setting

DT = ("dt", "vdt")  # fields read by the kinds conditioned on a target return (the Decision model's)
GROUPS = (("model", ModelConfig), ("bc", BCConfig), ("iql", IQLConfig), ("value", ValueConfig))  # nested configs
PATHS = ("config", "run_dir", "d4rl_cache", "resume", "critic_from")  # fields holding paths (strings in the saved form)


def _positive(v: float) -> bool:
    return math.isfinite(v) and v > 0


def _non_negative(v: float) -> bool:
    return math.isfinite(v) and v >= 0


def _data_targets_tag(on: bool, cfg: TrainConfig) -> str:
    if not on:
        return ""
    q = cfg.data_target_quantiles
    return "+data-targets" + ("" if q == [1.0] else "-q" + "_".join(f"{x:g}" for x in q))


@dataclass
class TrainConfig:
    """Train an agent offline. Defaults are the paper protocol; see configs/ for others."""

    config: Path | None = setting(None, on_resume=True)
    """YAML file whose values replace these defaults (flags given here still win)."""

    env: str | None = "hopper"
    """Task: hopper, halfcheetah or walker2d (also used to pick the D4RL file and DT's targets)."""
    dataset: str = setting("medium", rule=(lambda v: bool(v.strip()), "a dataset name, Minari id or path"))
    """A level (medium, medium-replay, medium-expert, expert, random) with --env, a D4RL name
    (hopper-medium-v2), a Minari id (local/hopper/medium-v0), or a path to a D4RL-layout hdf5."""
    d4rl_cache: Path | None = setting(None, on_resume=True)
    """Where D4RL files are cached (default $SEQRL_D4RL_CACHE or ~/.cache/seqrl/d4rl)."""
    eval_env: str | None = None
    """Gymnasium id to evaluate in instead of the dataset's (e.g. Hopper-v4 for D4RL hopper data)."""
    download: bool = setting(True, on_resume=True)
    """Download a dataset that is not found locally (needs a network)."""

    agent: Literal["dt", "bc", "iql", "vdt"] = "dt"
    """dt: the Decision model over --backbone, conditioned on returns-to-go; vdt: the same guided by a learned
    value (its settings --value.*; configs/cpu/vdt-*.yaml); bc: behaviour cloning, an MLP on the current state
    (no returns-to-go, no target; configs/cpu/bc-*.yaml); iql: implicit Q-learning (configs/cpu/iql-*.yaml)."""
    model: ModelConfig = setting(factory=ModelConfig, agents=DT)
    """The Decision model (--agent dt, vdt)."""
    value: ValueConfig = setting(factory=ValueConfig, agents=("vdt",))
    """How the value guides the Decision model, and its critic (--agent vdt)."""
    critic_from: Path | None = setting(None, agents=("vdt",), label=(8, lambda v, _: "+fixed-critic" if v else ""))
    """--agent vdt: the critic of another run, loaded and held fixed instead of learned alongside: an IQL run of the
    same data (configs/cpu/iql-<task>.yaml), a run directory or checkpoint, or a folder of runs holding the finished
    IQL run of this dataset and seed (the newest). Its sizes must be --value.critic.hidden's."""
    bc: BCConfig = setting(factory=BCConfig, agents=("bc",))
    """The behaviour-cloning MLP (--agent bc)."""
    iql: IQLConfig = setting(factory=IQLConfig, agents=("iql",))
    """IQL's actor and critic (--agent iql)."""
    rtg_scale: float = setting(1000.0, rule=(_positive, "> 0"), agents=DT)
    """Returns-to-go are divided by this before embedding."""

    steps: int = setting(100_000, rule=(lambda v: v >= 1, ">= 1"), on_resume=True)
    """Gradient updates."""
    batch_size: int = setting(64, rule=(lambda v: v >= 1, ">= 1"))
    """Windows per update."""
    lr: float = setting(1e-4, rule=(_positive, "> 0"))
    """AdamW learning rate after warm-up."""
    weight_decay: float = setting(1e-4, rule=(_non_negative, ">= 0"))
    """AdamW weight decay."""
    warmup_steps: int = setting(10_000, rule=(lambda v: v >= 0, ">= 0"))
    """Linear learning-rate warm-up from 0 over this many updates."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After warm-up: constant (DT) or cosine decay to 0 at the last update."""
    precision: Literal["auto", "fp32", "bf16"] = setting("auto", on_resume=True)
    """Forward pass of the update: auto (bfloat16 autocast where it was measured to pay: CPUs with AMX-BF16,
    CUDA GPUs with bf16; fp32 elsewhere, AVX512-BF16 without AMX included; said in the log), fp32 or bf16 (forced)."""
    compile: Literal["auto", "on", "off"] = setting("auto", on_resume=True)
    """torch.compile the update's forward + loss: auto (only for backbones where bench/run.py measured
    a gain on this device type; docs/speed.md), on or off. The first update pays the compile."""
    grad_clip: float = setting(0.25, rule=(_non_negative, ">= 0 (0: no clipping)"))
    """Clip the global gradient norm to this (0: no clipping)."""
    ema_decay: float = setting(0.0, rule=(lambda v: 0 <= v < 1, "in [0, 1) (0: off, e.g. 0.999)"),
                               label=(20, lambda v, _: f"+ema{v:g}" if v else ""))
    """Evaluate and checkpoint an exponential moving average of the weights with this decay, bias-corrected
    (0: off; e.g. 0.999 averages over about the last 1,000 updates). Training continues on the raw weights."""
    decay_groups: bool = setting(False, label=(30, lambda v, _: "+decay-groups" if v else ""))
    """Weight decay on weight matrices only (Linear, Conv, RNN); none on biases, norms, embeddings and SSM
    parameters (minGPT/nanoGPT and Mamba parameter groups). Off: every parameter decays."""
    val_fraction: float = setting(0.0, rule=(lambda v: 0 <= v < 1, "the share of episodes held out, in [0, 1) (0: off)"),
                                  label=(70, lambda v, _: f"+val{v:g}" if v else ""))
    """Hold this share of the dataset's episodes out of training (drawn with the run's seed; 0: off) and log, at
    every evaluation, the action MSE on 1,024 fixed windows of them (losses/val_action_mse) beside the same
    on 1,024 fixed training windows (losses/train_probe_action_mse), dropout off: over-fitting shows as the
    two parting. It trains on less data, so its runs are labelled +val<share>."""
    init: Literal["default", "gpt"] = setting("default", label=(40, lambda v, _: "" if v == "default" else f"+init-{v}"))
    """default: torch's layer initializations; gpt: Linear/Embedding weights N(0, 0.02), biases 0, residual
    output projections N(0, 0.02 / sqrt(2 n_layers)) (GPT-2, nanoGPT; special inits such as gate biases kept)."""

    eval_every: int = setting(10_000, rule=(lambda v: v >= 1, ">= 1"), on_resume=True)
    """Evaluate every this many updates (and always after the last)."""
    eval_episodes: int = setting(10, rule=(lambda v: v >= 1, ">= 1"), on_resume=True)
    """Episodes per target return at each evaluation."""
    eval_targets: list[float] | None = setting(None, rule=(returns_ok, RETURNS_RULE), agents=DT)
    """Target returns R^_0 (default: DT's for the task, e.g. hopper 3600 1800)."""
    targets_from_data: bool = setting(False, label=(10, _data_targets_tag), agents=DT)
    """Targets from the dataset when it is not D4RL's own: the --data-target-quantiles of its episode returns.
    D4RL's own data (hopper-medium-v2, ...) keeps DT's constants."""
    data_target_quantiles: list[float] = setting(
        factory=lambda: [1.0], agents=DT,
        rule=(lambda v: len(v) > 0 and all(0 <= q <= 1 for q in v), "quantiles in [0, 1] (1: the best episode)"))
    """Quantiles (0..1) of the dataset's episode returns used as targets with --targets-from-data
    (1.0: the best episode; 0.5: the median)."""
    rollout: list[Rollout] = setting(factory=lambda: ["window"], agents=DT,
                                     rule=(lambda v: len(v) > 0, "one or more of window, recurrent"))
    """Rollout modes to evaluate: window (DT's re-run of the last K steps) and/or recurrent."""

    tag: str = setting("", rule=(lambda v: bool(re.fullmatch(r"[A-Za-z0-9._-]*", v)),
                                 "letters, digits, '.', '_' and '-' (it goes into run directory names)"),
                       label=(90, lambda v, _: f"+{v}" if v else ""))
    """A label appended to the run's agent label (run names, results rows) to tell apart the arms of an A/B on a
    setting that has no label of its own (e.g. lr_schedule); the recipe flags above label themselves."""
    seed: int = setting(0, rule=(seed_ok, SEED_RULE))
    """Seed for torch, numpy and the window sampler."""
    device: str = setting("auto", on_resume=True)
    """auto (CUDA when available), cpu, cuda or cuda:N."""
    run_dir: Path | None = setting(None, on_resume=True)
    """Run directory (default runs/<env>__<dataset>__<agent label>__<seed>__<unix time in ms>)."""
    checkpoint_every: int = setting(1000, rule=(lambda v: v >= 0, ">= 0 (0: only at evaluations)"), on_resume=True)
    """Also write last.pt every this many updates (0: only at evaluations)."""
    keep_checkpoints: bool = setting(False, on_resume=True)
    """Also keep each evaluation's policy as checkpoints/step_<N>.pt (the acting weights, no optimizer; about
    3 MB for the paper-size model), to evaluate any of them again later: evaluate.py RUN/checkpoints/step_3000.pt."""
    resume: Path | None = setting(None, on_resume=True)
    """Continue the run in this directory from its last.pt, exactly (same batches and RNG streams)."""
    overwrite: bool = setting(False, on_resume=True)
    """Delete the run already in --run-dir before starting (without it such a directory is refused)."""
    log_every: int = setting(100, rule=(lambda v: v >= 1, ">= 1"), on_resume=True)
    """Log training scalars every this many updates."""
    threads: int = setting(0, rule=(lambda v: v >= 0, ">= 0 (0: torch's default)"), on_resume=True)
    """torch CPU threads (0: torch's default)."""

    # ---- what the fields say together ----------------------------------------------------------------------
    @property
    def agent_config(self) -> Any:
        """The config of the agent's model, made of the groups its kind says (``model``; ``bc``; ``model`` and
        ``value``; ...)."""
        kind = agent_kind(self.agent)
        return kind.assemble({name: getattr(self, name) for name in kind.groups})

    @property
    def architecture(self) -> str:
        """What the model is built on: the backbone for a kind that reads the Decision model, else the kind's name."""
        return self.model.backbone if self.on_backbone else self.agent

    @property
    def on_backbone(self) -> bool:
        """Whether the agent kind is built on a sequence backbone (the Decision model's kinds), so a grid runs it
        once per backbone."""
        return "model" in agent_kind(self.agent).groups

    @property
    def context_len(self) -> int:
        """Timesteps per training window (BC: one)."""
        return self.agent_config.context_len

    def reads(self, f: dataclasses.Field) -> bool:
        """Whether this run's agent kind reads the field ``f``."""
        who = facts(f).agents
        return who is None or self.agent in who

    def label(self) -> str:
        """The run's agent label: the model's (``bc``, ``mingru+ur``), then one tag per field set away from its
        default that labels itself (``+ema0.999``, ``+no-time``), in their ranks' order. Run names, the grid's
        resume check and the results tables use it, so the arms of an A/B never mix."""
        tags = []
        for holder, f in self._fields():
            if (label := facts(f).label) is not None:
                rank, tag = label
                tags.append((rank, tag(getattr(holder, f.name), self)))
        return self.agent_config.label() + "".join(t for _, t in sorted(tags, key=lambda x: x[0]))

    def _fields(self) -> Iterator[tuple[Any, dataclasses.Field]]:
        """(holder, field) for every field this run reads: its own, and its agent config's."""
        def within(holder: Any) -> Iterator[tuple[Any, dataclasses.Field]]:
            for g in dataclasses.fields(holder):
                value = getattr(holder, g.name)
                if dataclasses.is_dataclass(value) and g.name != "options":
                    yield from within(value)
                else:
                    yield holder, g

        for f in dataclasses.fields(self):
            if not self.reads(f):
                continue
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                yield from within(value)
            else:
                yield self, f

    # ---- saved form ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (what config.yaml holds): paths as strings, the agent configs as mappings."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if dataclasses.is_dataclass(v) else str(v) if isinstance(v, Path) else v
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str) -> TrainConfig:
        """From ``to_dict`` (or a config file's mapping): unknown keys and values of the wrong kind refused,
        naming ``source``."""
        values = dict(values)
        groups = GROUPS
        misplaced = [f"{k!r} (did you mean {name}: {{{close[0]}: ...}}?)" for k in values if k not in cls.__dataclass_fields__
                     for name, group in groups if (close := difflib.get_close_matches(k, group.__dataclass_fields__, n=1))]
        misplaced += [f"{k!r} (a backbone's options: model: {{backbone: {k}, options: {{...}}}}, or in a protocol's "
                      f"file backbone_defaults: {{{k}: {{...}}}})" for k in values
                      if k not in cls.__dataclass_fields__ and k in available_backbones()]
        if misplaced:
            raise SeqRLError(f"{source}: unknown config key(s) {', '.join(misplaced)}: a config file gives the model's "
                             "fields under model: and BC's under bc: (on the command line: --width, --bc.hidden).")
        for name, group in groups:
            if name in values:
                v = values[name]
                if not isinstance(v, (Mapping, group)):
                    raise SeqRLError(f"{source}: {name} must be a mapping of its fields, got {v!r}.")
                values[name] = v if isinstance(v, group) else group.from_dict(v, f"{source}: {name}")
        return from_mapping(cls, values, source, paths=PATHS)


def check_config(cfg: TrainConfig) -> None:
    """Every value in range and nothing the run would ignore or that contradicts itself, before any work; all
    range problems in one message."""
    if cfg.agent not in AGENTS:
        raise SeqRLError(f"Unknown agent kind {cfg.agent!r}: known kinds are {', '.join(AGENTS)}.")
    model, options = cfg.model, cfg.model.options
    check_flags(rule_problems(cfg) + rule_problems(model) + rule_problems(cfg.bc, "bc.") + rule_problems(cfg.iql, "iql.")
                + rule_problems(cfg.iql.critic, "iql.critic.") + rule_problems(cfg.value, "value.")
                + rule_problems(cfg.value.critic, "value.critic.") + [
        (f"{model.backbone}.{name}", ok, want, getattr(options, name)) for name, ok, want in options.rules(max(model.width, 1))])
    ignored = unread_settings(cfg)
    if ignored:
        state = (" (it acts on the current state: no backbone, window, returns-to-go or target)"
                 if not agent_kind(cfg.agent).conditioned else "")
        whose = "; ".join(f"{', '.join(flags)}: --agent {' / '.join(kinds)}" for kinds, flags in ignored.items())
        raise SeqRLError(f"--agent {cfg.agent} does not use {', '.join(f for fs in ignored.values() for f in fs)}"
                         f"{state}; they are settings of other kinds ({whose}). Drop them (from the flags or the "
                         f"--config file; its recipe: configs/cpu/{cfg.agent}-<task>.yaml"
                         f"{'' if cfg.agent != 'dt' else ' is configs/cpu/<task>.yaml'}).")
    if cfg.targets_from_data and cfg.eval_targets:
        raise SeqRLError("--targets-from-data derives the targets from the dataset; --eval-targets gives them: "
                         "use one of the two.")
    if cfg.data_target_quantiles != [1.0] and not cfg.targets_from_data:
        raise SeqRLError("--data-target-quantiles only applies with --targets-from-data.")


def unread_settings(cfg: TrainConfig) -> dict[tuple[str, ...], list[str]]:
    """The flags of the settings this run's agent kind does not read that differ from their defaults, by the
    kinds that read them."""
    default = TrainConfig()
    out: dict[tuple[str, ...], list[str]] = {}
    for f in dataclasses.fields(cfg):
        if cfg.reads(f):
            continue
        value, base, flags = getattr(cfg, f.name), getattr(default, f.name), []
        if dataclasses.is_dataclass(value):
            flags += [group_flag(f.name, name) for name in changed_fields(value, base)]
            if f.name == "model":
                flags += [flag(f"{value.backbone}.{k}") for k in changed_options(value.options)]
        elif value != base:
            flags.append(flag(f.name))
        if flags:
            out.setdefault(facts(f).agents or (), []).extend(flags)
    return out


def changed_fields(value: Any, base: Any, prefix: str = "") -> list[str]:
    """The (dotted) names of the fields of the config ``value`` that differ from ``base``'s, nested configs
    entered (a backbone's options apart)."""
    out = []
    for g in dataclasses.fields(value):
        v, b = getattr(value, g.name), getattr(base, g.name)
        if g.name == "options" or v == b:
            continue
        out += changed_fields(v, b, f"{prefix}{g.name}.") if dataclasses.is_dataclass(v) else [prefix + g.name]
    return out


def group_flag(group: str, name: str) -> str:
    """The flag of a field of a nested group: the Decision model's are flat (``--width``), the others prefixed
    (``--bc.hidden``)."""
    return flag(name) if group == "model" else flag(f"{group}.{name}")


def changed_options(options: Any) -> list[str]:
    """The fields of a backbone's ``options`` that differ from their defaults."""
    default = type(options)()
    return [f.name for f in dataclasses.fields(options) if getattr(options, f.name) != getattr(default, f.name)]


def may_change_on_resume() -> list[str]:
    """The fields a resumed run may take from the command line (the others must equal the run's)."""
    return [f.name for f in dataclasses.fields(TrainConfig) if facts(f).on_resume]

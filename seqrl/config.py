"""Typed run configuration: dataclass defaults, then a YAML file, then command-line flags.

``TrainConfig``'s defaults are the paper protocol (Chen et al. 2021, DT on D4RL).
``configs/<protocol>/<task>.yaml`` files override some fields; any field can be
overridden again on the command line (``--width 256``). The resolved config is
saved with every run and checkpoint.

A backbone's own options (its registered dataclass, see ``agents/backbones/base.py``) are not
TrainConfig fields: on the command line each backbone has its group of flags
(``--mingru.gate ur``, ``--s4d.d-state 32``), in a config file its mapping (``mingru: {gate: ur}``),
and the trained backbone's options are saved that way. Options of a backbone other than the one
trained are refused. Configs written before options lived with their backbones have them as flat
keys (``gate: ur``, ``dt_min: 0.01``); those are still read (config files, run directories,
``--resume``; the flags ``--gate`` etc. too), for the backbone trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, TypeVar

import yaml

from seqrl.errors import RETURNS_RULE, SEED_RULE, SeqRLError, check_flags, returns_ok, seed_ok
from seqrl.typed import from_mapping

Rollout = Literal["window", "recurrent"]


@dataclass
class TrainConfig:
    """Train a Decision-style agent offline. Defaults are the paper protocol; see configs/ for others."""

    config: Path | None = None
    """YAML file whose values replace these defaults (flags given here still win)."""

    env: str | None = "hopper"
    """Task: hopper, halfcheetah or walker2d (also used to pick the D4RL file and DT's targets)."""
    dataset: str = "medium"
    """A level (medium, medium-replay, medium-expert, expert, random) with --env, a D4RL name
    (hopper-medium-v2), a Minari id (local/hopper/medium-v0), or a path to a D4RL-layout hdf5."""
    d4rl_cache: Path | None = None
    """Where D4RL files are cached (default $SEQRL_D4RL_CACHE or ~/.cache/seqrl/d4rl)."""
    eval_env: str | None = None
    """Gymnasium id to evaluate in instead of the dataset's (e.g. Hopper-v4 for D4RL hopper data)."""
    download: bool = True
    """Download a dataset that is not found locally (needs a network)."""

    agent: Literal["dt", "bc"] = "dt"
    """dt: the Decision model over --backbone, conditioned on returns-to-go; bc: behaviour cloning, an MLP
    on the current state (no returns-to-go, no target; see configs/cpu/bc-*.yaml for its recipe)."""
    bc_hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the BC MLP (ReLU; tanh output). --agent bc only."""

    backbone: str = "transformer"
    """Sequence backbone, by registry name (transformer, mingru, ...; an unknown name lists them all). Its own
    options are the flags of its group below (--mingru.gate, --s4d.d-state, ...)."""
    backbone_options: Any = None
    """The options of --backbone: an instance of its registered options class (None: its defaults). Set by the
    flags --<backbone>.<option> and the config key <backbone>: {option: value}, not by a flag of its own."""
    context_len: int = 20
    """K: timesteps per training window (3K tokens)."""
    n_layers: int = 3
    """Blocks in the backbone."""
    width: int = 128
    """Embedding / model width D."""
    dropout: float = 0.1
    """Dropout on embeddings, residual branches and attention."""
    max_ep_len: int = 1000
    """Size of the timestep embedding (longest episode)."""
    time_embedding: bool = True
    """Add DT's learned timestep embedding to every token. Off (--no-time-embedding): the model sees no episode
    time, so a target return above the data's is asked of it at states, not at (state, time) pairs the data
    never reached (issue 12's A/B)."""
    tokens: Literal["interleaved", "fused"] = "interleaved"
    """Token layout: interleaved (DT: a return-to-go, a state and an action token per timestep, a_t read
    at the state's) or fused (one token per timestep made of the return-to-go and the state, actions not
    fed in; the target reaches each prediction directly, and the sequence is 3x shorter)."""
    rtg_scale: float = 1000.0
    """Returns-to-go are divided by this before embedding."""

    steps: int = 100_000
    """Gradient updates."""
    batch_size: int = 64
    """Windows per update."""
    lr: float = 1e-4
    """AdamW learning rate after warm-up."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 10_000
    """Linear learning-rate warm-up from 0 over this many updates."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After warm-up: constant (DT) or cosine decay to 0 at the last update."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Forward pass of the update: auto (bfloat16 autocast where it was measured to pay: CPUs with AMX-BF16,
    CUDA GPUs with bf16; fp32 elsewhere, AVX512-BF16 without AMX included; said in the log), fp32 or bf16 (forced)."""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the update's forward + loss: auto (only for backbones where bench/run.py measured
    a gain on this device type; README, Speed), on or off. The first update pays the compile."""
    grad_clip: float = 0.25
    """Clip the global gradient norm to this (0: no clipping)."""
    ema_decay: float = 0.0
    """Evaluate and checkpoint an exponential moving average of the weights with this decay, bias-corrected
    (0: off; e.g. 0.999 averages over about the last 1,000 updates). Training continues on the raw weights."""
    decay_groups: bool = False
    """Weight decay on weight matrices only (Linear, Conv, RNN); none on biases, norms, embeddings and SSM
    parameters (minGPT/nanoGPT and Mamba parameter groups). Off: every parameter decays."""
    val_fraction: float = 0.0
    """Hold this share of the dataset's episodes out of training (drawn with the run's seed; 0: off) and log, at
    every evaluation, the action MSE on 1,024 fixed windows of them (losses/val_action_mse) beside the same
    on 1,024 fixed training windows (losses/train_probe_action_mse), dropout off: over-fitting shows as the
    two parting. It trains on less data, so its runs are labelled +val<share>."""
    init: Literal["default", "gpt"] = "default"
    """default: torch's layer initializations; gpt: Linear/Embedding weights N(0, 0.02), biases 0, residual
    output projections N(0, 0.02 / sqrt(2 n_layers)) (GPT-2, nanoGPT; special inits such as gate biases kept)."""

    eval_every: int = 10_000
    """Evaluate every this many updates (and always after the last)."""
    eval_episodes: int = 10
    """Episodes per target return at each evaluation."""
    eval_targets: list[float] | None = None
    """Target returns R^_0 (default: DT's for the task, e.g. hopper 3600 1800)."""
    targets_from_data: bool = False
    """Targets from the dataset when it is not D4RL's own: the --data-target-quantiles of its episode returns.
    D4RL's own data (hopper-medium-v2, ...) keeps DT's constants."""
    data_target_quantiles: list[float] = field(default_factory=lambda: [1.0])
    """Quantiles (0..1) of the dataset's episode returns used as targets with --targets-from-data
    (1.0: the best episode; 0.5: the median)."""
    rollout: list[Rollout] = field(default_factory=lambda: ["window"])
    """Rollout modes to evaluate: window (DT's re-run of the last K steps) and/or recurrent."""

    tag: str = ""
    """A label appended to the run's agent label (run names, results rows) to tell apart the arms of an A/B on a
    setting that has no label of its own (e.g. lr_schedule); the recipe flags above label themselves."""
    seed: int = 0
    """Seed for torch, numpy and the window sampler."""
    device: str = "auto"
    """auto (CUDA when available), cpu, cuda or cuda:N."""
    run_dir: Path | None = None
    """Run directory (default runs/<env>__<dataset>__<backbone>__<seed>__<unix time>)."""
    checkpoint_every: int = 1000
    """Also write last.pt every this many updates (0: only at evaluations)."""
    keep_checkpoints: bool = False
    """Also keep each evaluation's policy as checkpoints/step_<N>.pt (the acting weights, no optimizer; about
    3 MB for the paper-size model), to evaluate any of them again later: evaluate.py RUN/checkpoints/step_3000.pt."""
    resume: Path | None = None
    """Continue the run in this directory from its last.pt, exactly (same batches and RNG streams)."""
    overwrite: bool = False
    """Delete the run already in --run-dir before starting (without it such a directory is refused)."""
    log_every: int = 100
    """Log training scalars every this many updates."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""

    @property
    def options(self) -> Any:
        """The options of --backbone (``backbone_options``, or the backbone's defaults)."""
        from seqrl.agents.backbones.options import options_from_mapping

        return options_from_mapping(self.backbone, self.backbone_options, "config")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (what config.yaml holds): the backbone's options as ``<backbone>: {...}``
        right after ``backbone``, left out for a backbone that has none."""
        out: dict[str, Any] = {}
        for k, v in dataclasses.asdict(self).items():
            if k != "backbone_options":
                out[k] = str(v) if isinstance(v, Path) else v
            elif options := dataclasses.asdict(self.options):
                out[self.backbone] = options
        return out


T = TypeVar("T")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_values(cfg: TrainConfig) -> None:
    """Every numeric and choice field in range, before any work; all problems in one message."""
    finite = math.isfinite
    rules: list[tuple[str, bool, str]] = [  # (field, ok, what it must be)
        ("context_len", cfg.context_len >= 1, ">= 1"),
        ("n_layers", cfg.n_layers >= 1, ">= 1"),
        ("width", cfg.width >= 1, ">= 1"),
        ("dropout", 0 <= cfg.dropout < 1, "in [0, 1)"),
        ("max_ep_len", cfg.max_ep_len >= 1, ">= 1"),
        ("rtg_scale", finite(cfg.rtg_scale) and cfg.rtg_scale > 0, "> 0"),
        ("steps", cfg.steps >= 1, ">= 1"),
        ("batch_size", cfg.batch_size >= 1, ">= 1"),
        ("lr", finite(cfg.lr) and cfg.lr > 0, "> 0"),
        ("weight_decay", finite(cfg.weight_decay) and cfg.weight_decay >= 0, ">= 0"),
        ("warmup_steps", cfg.warmup_steps >= 0, ">= 0"),
        ("grad_clip", finite(cfg.grad_clip) and cfg.grad_clip >= 0, ">= 0 (0: no clipping)"),
        ("eval_every", cfg.eval_every >= 1, ">= 1"),
        ("eval_episodes", cfg.eval_episodes >= 1, ">= 1"),
        ("eval_targets", returns_ok(cfg.eval_targets), RETURNS_RULE),
        ("rollout", len(cfg.rollout) > 0, "one or more of window, recurrent"),
        ("seed", seed_ok(cfg.seed), SEED_RULE),
        ("checkpoint_every", cfg.checkpoint_every >= 0, ">= 0 (0: only at evaluations)"),
        ("log_every", cfg.log_every >= 1, ">= 1"),
        ("threads", cfg.threads >= 0, ">= 0 (0: torch's default)"),
        ("dataset", bool(cfg.dataset.strip()), "a dataset name, Minari id or path"),
    ]
    options = cfg.options
    check_flags([(name, ok, want, getattr(cfg, name)) for name, ok, want in rules] + [
        (f"{cfg.backbone}.{name}", ok, want, getattr(options, name)) for name, ok, want in options.rules(max(cfg.width, 1))])


LEGACY_FLAGS = {"--bf16": "--precision=bf16", "--no-bf16": "--precision=fp32"}  # before precision existed


def migrate_legacy_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Configs saved before ``precision``/``compile`` existed have ``bf16: true|false``: they keep the
    precision they ran with and no compile, so a resumed old run continues as it started."""
    if "bf16" not in values:
        return values
    out = dict(values)
    legacy = "bf16" if out.pop("bf16") else "fp32"
    if out.setdefault("precision", legacy) != legacy:
        raise SeqRLError(f"config has both bf16: {values['bf16']} and precision: {out['precision']}; "
                         "bf16 is the old name of precision: keep precision only.")
    out.setdefault("compile", "off")
    return out


def option_backbones() -> dict[str, type]:
    """The registered backbones that have options -> their options class (the ``<backbone>:`` config keys)."""
    from seqrl.agents.backbones import available_backbones, options_class

    found = {b: options_class(b) for b in available_backbones() if dataclasses.fields(options_class(b))}
    clash = sorted(set(found) & {f.name for f in dataclasses.fields(TrainConfig)})
    if clash:
        raise SeqRLError(f"Backbone name(s) {', '.join(clash)} clash with config fields of the same name: rename them.")
    return found


def unused_options(agent: str, backbone: str, flags: list[tuple[str, str]]) -> SeqRLError:
    """The error for backbone options the run would ignore; ``flags``: (flag, who reads it)."""
    if agent == "bc":
        return SeqRLError(f"--agent bc does not use {', '.join(f for f, _ in flags)}: BC is an MLP on the current "
                          "state, with no backbone. Drop them (from the flags or the --config file).")
    by_who: dict[str, list[str]] = {}
    for flag, who in flags:
        by_who.setdefault(who, []).append(flag)
    return SeqRLError(f"--backbone {backbone} does not use " + "; ".join(f"{', '.join(f)} ({who})" for who, f in by_who.items())
                      + ". Drop them (from the flags or the --config file), or pick a backbone that reads them.")


def _options_of(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` (a TrainConfig mapping) with its backbone options (``<backbone>:`` mappings, and the flat keys
    of older configs) turned into ``backbone_options``, the options of ``values``' backbone. Options of another
    backbone, and flat ones it does not read, are refused (not silently ignored)."""
    from seqrl.agents.backbones.options import FLAT_NAMES, BackboneOptions, read_options

    values = dict(values)
    backbone = values.get("backbone", TrainConfig.backbone)
    defaults = _backbone_defaults(values.pop("backbone_defaults", None), source)
    nested = {b: values.pop(b) for b in option_backbones() if b in values}
    flat = {k: values.pop(k) for k in FLAT_NAMES if k in values}
    own = nested.pop(backbone, None)
    if backbone in defaults and values.get("agent", TrainConfig.agent) != "bc" and not isinstance(own, BackboneOptions):
        own = {**defaults[backbone], **(own or {})}  # the backbone's own mapping wins over the protocol's
    options, ignored = read_options(backbone, own, flat, source)
    unused = _flat_unused(ignored)
    for b, mapping in nested.items():
        unused += set_options(b, read_options(b, mapping, {}, source)[0])
    if unused:
        raise unused_options(values.get("agent", TrainConfig.agent), backbone, unused)
    values["backbone_options"] = options
    return values


def _backbone_defaults(defaults: Any, source: str) -> dict[str, dict[str, Any]]:
    """A config file's ``backbone_defaults: {<backbone>: {option: value}}``: a protocol's options for each
    backbone, used for the one trained (its own ``<backbone>:`` mapping and flags win) and ignored for the
    others, so that one task config serves every backbone (``configs/cpu/*.yaml``). Checked for every
    backbone it names, so a typo is an error whichever backbone is trained."""
    from seqrl.agents.backbones.options import read_options

    if defaults is None:
        return {}
    if not isinstance(defaults, dict):
        raise SeqRLError(f"{source}: backbone_defaults must map a backbone to its options, e.g. "
                         f"'backbone_defaults: {{transformer: {{pos: rope}}}}'; got {defaults!r}.")
    known = option_backbones()
    unknown = sorted(str(b) for b in defaults if b not in known)
    if unknown:
        raise SeqRLError(f"{source}: backbone_defaults names {', '.join(unknown)}, which has no options; the "
                         f"backbones with options are {', '.join(sorted(known))}.")
    for b, mapping in defaults.items():
        read_options(b, mapping, {}, f"{source}: backbone_defaults")
    return {b: dict(m or {}) for b, m in defaults.items()}


def _flat_unused(ignored: list[str]) -> list[tuple[str, str]]:
    """(flag, who reads it) for flat options of older configs that the backbone trained does not read."""
    from seqrl.agents.backbones.options import readers

    return [(_flag(k), "read by " + (", ".join(readers(k)) or "no backbone")) for k in ignored]


def set_options(backbone: str, options: Any) -> list[tuple[str, str]]:
    """(flag, who reads it) for each of ``backbone``'s ``options`` not at its default (``--s4d.dt-min``, ...)."""
    return [(f"--{backbone}.{k.replace('_', '-')}", f"options of {backbone}") for k in changed_options(options)]


def changed_options(options: Any) -> list[str]:
    """The fields of a backbone's ``options`` that differ from their defaults."""
    default = type(options)()
    return [f.name for f in dataclasses.fields(options) if getattr(options, f.name) != getattr(default, f.name)]


def config_from_dict(cls: type[T], values: dict[str, Any], source: str) -> T:
    """Build ``cls`` from ``values`` (``typed.from_mapping``). For TrainConfig, older keys are migrated and the
    backbone options' keys are read too (``_options_of``)."""
    if cls is TrainConfig:
        values = _options_of(migrate_legacy_keys(values), source)
    return from_mapping(cls, values, source, paths=("config", "run_dir", "d4rl_cache", "resume"))


def _yaml_values(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in ``path``; a ``base: other.yaml`` key (relative to the file) supplies the values it omits."""
    if not path.is_file():
        raise SeqRLError(f"Config file {str(path)!r} does not exist. The configs shipped are under configs/.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SeqRLError(f"Config file {str(path)!r} is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise SeqRLError(f"Config file {str(path)!r} must hold a mapping of field: value.")
    if "base" in values:
        base = (path.parent / str(values.pop("base"))).resolve()
        if base in chain:
            raise SeqRLError(f"Config file {str(path)!r}: its 'base' chain loops back to {str(base)!r}.")
        inherited = _yaml_values(base, (*chain, path.resolve()))
        merged = {k: {**inherited[k], **v} for k, v in values.items()  # a backbone's options: per option
                  if isinstance(v, dict) and isinstance(inherited.get(k), dict)}
        values = {**inherited, **values, **merged}
    return values


def load_yaml_config(path: Path, cls: type[T] = TrainConfig) -> T:  # type: ignore[assignment]
    """A config file's values over the defaults (a ``base: FILE`` key first takes FILE's values)."""
    values = _yaml_values(path)
    values.setdefault("config", str(path))
    return config_from_dict(cls, values, str(path))


def cli_class() -> type:
    """TrainConfig as the command line sees it: ``backbone_options`` hidden, and one field per registered
    backbone with options, holding them (tyro renders it as the flags ``--<backbone>.<option>``)."""
    import tyro

    return _cli_class(tuple(option_backbones().items()), tyro.conf.Suppress)


@functools.lru_cache(maxsize=None)
def _cli_class(backbones: tuple[tuple[str, type], ...], suppress: Any) -> type:
    fields = [("backbone_options", Annotated[Any, suppress], dataclasses.field(default=None))]
    fields += [(name, cls, dataclasses.field(default_factory=cls)) for name, cls in backbones]
    cls = dataclasses.make_dataclass("TrainArgs", fields, bases=(TrainConfig,))
    cls.__doc__ = TrainConfig.__doc__
    return cls


def _flat_flags(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The flat option flags of older command lines (``--gate ur``, ``--dt-min 0.01``), and the other args."""
    from seqrl.agents.backbones.options import FlatOptions

    hints = typing.get_type_hints(FlatOptions)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for f in dataclasses.fields(FlatOptions):
        tp = hints[f.name]
        pre.add_argument(_flag(f.name), dest=f.name, default=None, type=tp if tp in (int, float) else str)
    known, rest = pre.parse_known_args(args)
    return {k: v for k, v in vars(known).items() if v is not None}, rest


def parse_train_args(argv: Sequence[str] | None = None, description: str | None = None) -> TrainConfig:
    """defaults <- --config YAML (or --resume's saved config) <- flags. ``--help`` lists every field with its
    help text, and each backbone's options in its own group."""
    import tyro

    from seqrl.agents.backbones.options import option_names, read_options

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("config", "resume", "backbone", "agent"):
        pre.add_argument(_flag(name), default=None)
    args = [LEGACY_FLAGS.get(a, a) for a in (sys.argv[1:] if argv is None else argv)]
    known, _ = pre.parse_known_args(args)
    if known.resume:  # the run's own resolved config is the default; flags (e.g. --steps) still win
        saved = Path(known.resume) / "config.yaml"
        if not saved.is_file():
            raise SeqRLError(f"--resume {known.resume!r}: no config.yaml there; is it a run directory?")
        values, source = {**_yaml_values(saved), "run_dir": known.resume, "resume": known.resume}, str(saved)
    elif known.config:
        values, source = {"config": known.config, **_yaml_values(Path(known.config))}, known.config
    else:
        values, source = {}, "defaults"
    # the backbone and agent the flags name decide whose options the file's keys are
    values.update({k: v for k, v in (("backbone", known.backbone), ("agent", known.agent)) if v is not None})
    default = config_from_dict(TrainConfig, values, source)
    flat, args = _flat_flags(args)
    if flat:  # an older command line's flat flags: for the backbone trained (it must read them)
        _, ignored = read_options(default.backbone, None, flat, "the command line")
        if ignored:
            raise unused_options(default.agent, default.backbone, _flat_unused(ignored))
        given = {k: v for k, v in flat.items() if k in option_names(default.backbone)}
        default.backbone_options = dataclasses.replace(default.options, **given)
    cls = cli_class()
    start = {f.name: getattr(default, f.name) for f in dataclasses.fields(TrainConfig)}
    own = {default.backbone: default.options} if default.backbone in option_backbones() else {}
    parsed = tyro.cli(cls, default=cls(**start, **own), args=args, description=description)
    stray = [flag for b in option_backbones() if b != parsed.backbone for flag in set_options(b, getattr(parsed, b))]
    if stray:
        raise unused_options(parsed.agent, parsed.backbone, stray)
    cfg = TrainConfig(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(TrainConfig)})
    cfg.backbone_options = getattr(parsed, parsed.backbone, None)
    return cfg

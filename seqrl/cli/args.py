"""The run config from the command line: the schema's defaults (``seqrl.training.config``), then a YAML file,
then flags.

``configs/<protocol>/<task>.yaml`` files override some fields in the saved form's layout (the model's under
``model:``, BC's under ``bc:``); a file may start with ``base: other.yaml`` and override some of its values,
and a protocol's file may give each backbone's options under ``backbone_defaults: {<backbone>: {...}}``, used
for the backbone trained (its own ``model: {options: ...}`` and flags win). On the command line every field is
a flag: the Decision model's without a prefix (``--backbone``, ``--width``), the other groups' with theirs
(``--bc.hidden``, ``--iql.beta``, ``--value.eta``, ``--value.critic.expectile``), and each
backbone's options in its own group (``--mingru.gate ur``, ``--s4d.d-state 32``); options of a backbone other
than the one trained are refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path
from typing import Annotated, Any, Sequence

from seqrl.agents.backbones import available_backbones, options_class
from seqrl.agents.kinds import agent_kind
from seqrl.agents.model import ModelConfig
from seqrl.core.errors import SeqRLError, flag
from seqrl.core.files import read_yaml
from seqrl.training.config import TrainConfig, changed_options


def yaml_values(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in ``path``; a ``base: other.yaml`` key (relative to the file) supplies the values it omits
    (nested mappings merged key by key)."""
    if not path.is_file():
        raise SeqRLError(f"Config file {str(path)!r} does not exist. The configs shipped are under configs/.")
    values = read_yaml(path) or {}
    if not isinstance(values, dict):
        raise SeqRLError(f"Config file {str(path)!r} must hold a mapping of field: value.")
    if "base" in values:
        if not isinstance(values["base"], str) or not values["base"].strip():
            raise SeqRLError(f"Config file {str(path)!r}: base must name one config file (a path relative to this "
                             f"file, e.g. base: ../cpu/hopper-medium.yaml), got {values['base']!r}.")
        base = (path.parent / values.pop("base")).resolve()
        if base in chain:
            raise SeqRLError(f"Config file {str(path)!r}: its 'base' chain loops back to {str(base)!r}.")
        values = merged(yaml_values(base, (*chain, path.resolve())), values)
    return values


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s values on ``base``'s, mappings merged key by key at any depth."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def option_backbones() -> dict[str, type]:
    """The registered backbones that have options -> their options class (the ``--<backbone>.<option>`` groups)."""
    found = {b: options_class(b) for b in available_backbones() if dataclasses.fields(options_class(b))}
    clash = sorted(set(found) & {f.name for f in dataclasses.fields(TrainConfig)})
    if clash:
        raise SeqRLError(f"Backbone name(s) {', '.join(clash)} clash with config fields of the same name: rename them.")
    return found


def with_backbone_defaults(values: dict[str, Any], source: str) -> dict[str, Any]:
    """A config file's values with its ``backbone_defaults`` applied to the backbone trained (its own
    ``model: {options: ...}`` wins) and removed. Every backbone named is checked, so a typo is an error whichever
    backbone is trained."""
    values = dict(values)
    defaults = values.pop("backbone_defaults", None)
    if defaults is None:
        return values
    known = option_backbones()
    if not isinstance(defaults, dict):
        raise SeqRLError(f"{source}: backbone_defaults must map a backbone to its options, e.g. "
                         f"'backbone_defaults: {{transformer: {{pos: rope}}}}'; got {defaults!r}.")
    unknown = sorted(str(b) for b in defaults if b not in known)
    if unknown:
        raise SeqRLError(f"{source}: backbone_defaults names {', '.join(unknown)}, which has no options; the "
                         f"backbones with options are {', '.join(sorted(known))}.")
    for b, mapping in defaults.items():
        ModelConfig.from_dict({"backbone": b, "options": mapping}, f"{source}: backbone_defaults")
    model = dict(values.get("model") or {})
    backbone = model.get("backbone", ModelConfig.backbone)
    if backbone in defaults and "model" in agent_kind(values.get("agent", TrainConfig.agent)).groups:
        model["options"] = {**(defaults[backbone] or {}), **(model.get("options") or {})}
        values["model"] = model
    return values


def cli_class() -> type:
    """TrainConfig as the command line sees it: the Decision model's fields without a prefix and its ``options``
    hidden, and one field per registered backbone with options, holding them (flags ``--<backbone>.<option>``)."""
    import tyro

    return _cli_class(tuple(option_backbones().items()), tyro.conf.Suppress, tyro.conf.OmitArgPrefixes)


@functools.lru_cache(maxsize=None)
def _cli_class(backbones: tuple[tuple[str, type], ...], suppress: Any, omit_prefix: Any) -> type:
    model_args = dataclasses.make_dataclass(
        "ModelArgs", [("options", Annotated[Any, suppress], dataclasses.field(default=None))], bases=(ModelConfig,),
        frozen=True)
    model_args.__doc__ = ModelConfig.__doc__
    fields = [("model", Annotated[model_args, omit_prefix], dataclasses.field(default_factory=model_args))]
    fields += [(name, cls, dataclasses.field(default_factory=cls)) for name, cls in backbones]
    cls = dataclasses.make_dataclass("TrainArgs", fields, bases=(TrainConfig,))
    cls.__doc__ = TrainConfig.__doc__
    cls.model_args = model_args
    return cls


def start_values(known: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """What the flags start from: a resumed run's saved config, a config file's values, or nothing."""
    if known.resume:  # the run's own resolved config is the default; flags (e.g. --steps) still win
        saved = Path(known.resume) / "config.yaml"
        if not saved.is_file():
            raise SeqRLError(f"--resume {known.resume!r}: no config.yaml there; is it a run directory?")
        return {**yaml_values(saved), "run_dir": known.resume, "resume": known.resume}, str(saved)
    if known.config:
        return {"config": known.config, **yaml_values(Path(known.config))}, known.config
    return {}, "defaults"


def parse_train_args(argv: Sequence[str] | None = None, description: str | None = None) -> TrainConfig:
    """defaults <- --config YAML (or --resume's saved config) <- flags. ``--help`` lists every field with its
    help text, and each backbone's options in its own group."""
    import tyro

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in ("config", "resume", "backbone", "agent"):
        pre.add_argument(flag(name), default=None)
    args = list(sys.argv[1:] if argv is None else argv)
    known, _ = pre.parse_known_args(args)
    values, source = start_values(known)
    if known.agent is not None:
        values["agent"] = known.agent
    if known.backbone is not None:  # the flag decides whose options the file's keys are
        model = dict(values.get("model") or {})
        if model.get("backbone", ModelConfig.backbone) != known.backbone and known.resume:
            model.pop("options", None)  # a resumed run refuses the change itself, naming both (rundir.check_resume)
        elif model.get("backbone", ModelConfig.backbone) != known.backbone and model.get("options"):
            raise SeqRLError(f"{source}: model.options are {model.get('backbone', ModelConfig.backbone)}'s, but "
                             f"--backbone {known.backbone} is trained: give that backbone's options as flags "
                             f"(--{known.backbone}.<option>) or in backbone_defaults.")
        values["model"] = {**model, "backbone": known.backbone}
    default = TrainConfig.from_dict(with_backbone_defaults(values, source), source)
    cls = cli_class()
    start = {f.name: getattr(default, f.name) for f in dataclasses.fields(TrainConfig)}
    start["model"] = cls.model_args(**{f.name: getattr(default.model, f.name) for f in dataclasses.fields(ModelConfig)
                                       if f.name != "options"})
    backbone = default.model.backbone
    own = {backbone: default.model.options} if backbone in option_backbones() else {}
    parsed = tyro.cli(cls, default=cls(**start, **own), args=args, description=description)
    backbone = parsed.model.backbone
    stray = {b: [flag(f"{b}.{k}") for k in changed_options(getattr(parsed, b))] for b in option_backbones() if b != backbone}
    stray = {b: flags for b, flags in stray.items() if flags}
    if stray and "model" not in agent_kind(parsed.agent).groups:
        raise SeqRLError(f"--agent {parsed.agent} does not use {', '.join(sum(stray.values(), []))}: it has no "
                         "backbone. Drop them.")
    if stray:
        which = "; ".join(f"{', '.join(flags)} (options of {b})" for b, flags in stray.items())
        raise SeqRLError(f"--backbone {backbone} does not use {which}. Drop them (from the flags or the --config "
                         "file), or pick the backbone that reads them.")
    model = ModelConfig(**{f.name: getattr(parsed.model, f.name) for f in dataclasses.fields(ModelConfig)
                           if f.name != "options"}, options=getattr(parsed, backbone, None))
    return TrainConfig(**{**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(TrainConfig)}, "model": model})


def load_config(path: Path) -> TrainConfig:
    """A saved config (a run's config.yaml) or a config file, over the defaults."""
    values = with_backbone_defaults(yaml_values(path), str(path))
    values.setdefault("config", str(path))
    return TrainConfig.from_dict(values, str(path))

"""A backbone's options read from a mapping (a config file, a checkpoint), and the flat layout before them.

A backbone's options are an instance of the dataclass it registers (``BackboneOptions``); in a config or a
checkpoint they are a mapping of its fields (``{gate: ur}``), read by ``options_from_mapping``.

Before options lived with their backbones (checkpoint format 2 and the run configs written with it), every
option was a flat field of TrainConfig and ModelConfig, whichever backbone read it: ``FlatOptions``. Such a
mapping is still read: ``read_options`` takes the values the backbone reads and names those it would ignore.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from seqrl.errors import SeqRLError
from seqrl.typed import check_types, from_mapping

from .base import BackboneOptions
from .gates import Gate
from .registry import available_backbones, options_class
from .scan import ScanBackend


@dataclass(frozen=True)
class FlatOptions:
    """The flat backbone options of checkpoint format 2 and of the configs saved with it, with their defaults."""

    n_heads: int = 1
    gate: Gate = "default"
    d_state: int = 16
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    scan: ScanBackend = "auto"


FLAT_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FlatOptions))


def option_names(backbone: str) -> list[str]:
    """The fields of ``backbone``'s options."""
    return [f.name for f in dataclasses.fields(options_class(backbone))]


def readers(option: str) -> list[str]:
    """The registered backbones that have an option called ``option``."""
    return [b for b in available_backbones() if option in option_names(b)]


def options_from_mapping(backbone: str, values: Mapping[str, Any] | BackboneOptions | None, source: str) -> BackboneOptions:
    """``backbone``'s options from a mapping of its fields (missing ones: the defaults; an unknown key or a
    value of the wrong kind is refused, naming ``source``), or as given if already its options."""
    cls = options_class(backbone)
    if values is None:
        return cls()
    if isinstance(values, BackboneOptions):
        if type(values) is not cls:
            raise SeqRLError(f"{source}: --backbone {backbone} takes {cls.__name__}, not {type(values).__name__}.")
        return values
    if not isinstance(values, Mapping):
        raise SeqRLError(f"{source}: the options of {backbone} must be a mapping of option: value, got {values!r}.")
    return from_mapping(cls, dict(values), f"{source} ({backbone} options)")


def read_options(backbone: str, nested: Mapping[str, Any] | BackboneOptions | None, flat: Mapping[str, Any],
                 source: str) -> tuple[BackboneOptions, list[str]]:
    """``backbone``'s options from its mapping ``nested`` and the flat (format-2) keys ``flat`` (nested wins),
    and the names of the flat keys it does not read though not at their defaults (a config refuses them, as
    it did then; a checkpoint's model never read them)."""
    check_types(FlatOptions, dict(flat), source)
    names, default = option_names(backbone), FlatOptions()
    reads = {k: v for k, v in flat.items() if k in names}
    ignored = [k for k, v in flat.items() if k not in names and v != getattr(default, k)]
    if isinstance(nested, BackboneOptions):  # already an options object: checked, then read as a mapping
        nested = dataclasses.asdict(options_from_mapping(backbone, nested, source))
    if nested is not None and not isinstance(nested, Mapping):
        raise SeqRLError(f"{source}: {backbone}: must be a mapping of option: value, got {nested!r}.")
    return options_from_mapping(backbone, {**reads, **(nested or {})}, source), ignored

"""A backbone's options read from a mapping (a config file, a checkpoint).

A backbone's options are an instance of the dataclass it registers (``BackboneOptions``); in a config or a
checkpoint they are a mapping of its fields (``{gate: ur}``), read by ``options_from_mapping``.
"""

from __future__ import annotations

from typing import Any, Mapping

from seqrl.core.errors import SeqRLError
from seqrl.core.typed import from_mapping

from .base import BackboneOptions
from .registry import options_class


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

"""Backbone registry: name -> class. A new backbone is one file and one decorator.

Every module in this package is imported when ``seqrl.agents.backbones`` is, so a
file that defines ``@register_backbone("name") class ...`` is all it takes.
"""

from __future__ import annotations

import difflib
from typing import Callable, TypeVar

from seqrl.errors import SeqRLError

from .base import Backbone, BackboneConfig

_REGISTRY: dict[str, type[Backbone]] = {}

B = TypeVar("B", bound=type[Backbone])


# The BackboneConfig options a backbone may read beyond width, depth and dropout.
OPTIONS = ("n_heads", "gate", "scan", "d_state", "dt_min", "dt_max")


def register_backbone(name: str, options: tuple[str, ...] = ()) -> Callable[[B], B]:
    """Class decorator: make ``cls`` available as ``--backbone name``. ``options``: which of ``OPTIONS``
    it reads (a run that sets another one to a non-default value is refused, not silently ignored)."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ValueError(f"backbone {name!r}: unknown options {sorted(unknown)}; known: {OPTIONS}")

    def decorator(cls: B) -> B:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"backbone name {name!r} is registered twice")
        _REGISTRY[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        cls.options = tuple(options)  # type: ignore[attr-defined]
        return cls

    return decorator


def available_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def get_backbone_class(name: str) -> type[Backbone]:
    """The class registered as ``name``; a clear error listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SeqRLError(
            f"Unknown backbone {name!r}.{hint} Known backbones: {', '.join(available_backbones())}. "
            "Pass one of them with --backbone NAME."
        ) from None


def build_backbone(name: str, cfg: BackboneConfig) -> Backbone:
    """Instantiate the backbone registered as ``name``."""
    return get_backbone_class(name)(cfg)

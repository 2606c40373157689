"""Backbone registry: name -> class. A new backbone is one file and one decorator.

Every module in this package is imported when ``seqrl.agents.backbones`` is, so a
file that defines ``@register_backbone("name", options=NameOptions) class ...`` is all it
takes. A backbone defined outside the package is loaded as a plugin (``load_plugins``):
a module or ``.py`` file named in ``$SEQRL_PLUGINS``, or an installed package's entry
point in the group ``seqrl.backbones``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, TypeVar

from seqrl.core.errors import SeqRLError

from .base import Backbone, BackboneConfig, BackboneOptions

_REGISTRY: dict[str, type[Backbone]] = {}

B = TypeVar("B", bound=type[Backbone])

PLUGINS_ENV = "SEQRL_PLUGINS"  # os.pathsep-separated modules or .py files that register backbones
PLUGIN_GROUP = "seqrl.backbones"  # entry-point group of installed packages that register backbones
PLUGIN_HINT = (f"A backbone defined outside seqrl is loaded by naming its module or .py file in ${PLUGINS_ENV} "
               f"(e.g. {PLUGINS_ENV}=my_backbone.py) or by a '{PLUGIN_GROUP}' entry point.")


def register_backbone(name: str, options: type[BackboneOptions] = BackboneOptions) -> Callable[[B], B]:
    """Class decorator: make ``cls`` available as ``--backbone name``, with ``options`` (a frozen dataclass
    subclassing ``BackboneOptions``) as its own hyperparameters: flags ``--name.<field>``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"backbone name {name!r}: use lowercase letters, digits and '_' (it becomes --{name}.<option>)")
    if not (isinstance(options, type) and issubclass(options, BackboneOptions) and dataclasses.is_dataclass(options)
            and options.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise ValueError(f"backbone {name!r}: options must be a frozen dataclass subclassing BackboneOptions")

    def decorator(cls: B) -> B:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"backbone name {name!r} is registered twice")
        _REGISTRY[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        cls.options_class = options  # type: ignore[attr-defined]
        return cls

    return decorator


def available_backbones() -> list[str]:
    """Registered backbone names (the plugins' included), sorted."""
    load_plugins()
    return sorted(_REGISTRY)


def get_backbone_class(name: str) -> type[Backbone]:
    """The class registered as ``name``; a clear error listing the known names otherwise."""
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SeqRLError(
            f"Unknown backbone {name!r}.{hint} Known backbones: {', '.join(available_backbones())}. "
            f"Pass one of them with --backbone NAME. {PLUGIN_HINT}"
        ) from None


def options_class(name: str) -> type[BackboneOptions]:
    """The options dataclass of the backbone registered as ``name``."""
    return get_backbone_class(name).options_class


def build_backbone(name: str, cfg: BackboneConfig) -> Backbone:
    """Instantiate the backbone registered as ``name``."""
    return get_backbone_class(name)(cfg)


def _import_plugin(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise SeqRLError(f"${PLUGINS_ENV}: no file {spec!r}.")
        module = f"seqrl_plugin_{path.stem}"
        if module in sys.modules:
            return
        found = importlib.util.spec_from_file_location(module, path)
        assert found is not None and found.loader is not None
        mod = importlib.util.module_from_spec(found)
        sys.modules[module] = mod  # dataclasses look their module up
        found.loader.exec_module(mod)
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as e:
            raise SeqRLError(f"${PLUGINS_ENV}: cannot import {spec!r} ({e}).") from None


_loaded: set[str] = set()  # plugins imported so far ("entry points": the group, scanned once)


def load_plugins() -> None:
    """Import the backbone plugins not imported yet: the entry points of group ``seqrl.backbones`` (scanned
    once per process), then ``$SEQRL_PLUGINS``. Called by the lookups above, so a plugin is loaded on first
    use (after the built-in backbones, whatever imports it)."""
    if "entry points" not in _loaded:
        _loaded.add("entry points")
        for ep in entry_points(group=PLUGIN_GROUP):
            ep.load()
    for spec in (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(os.pathsep)):
        if spec and spec not in _loaded:
            _loaded.add(spec)
            _import_plugin(spec)

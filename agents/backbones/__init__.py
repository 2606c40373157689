"""Sequence backbones behind one protocol (see ``base.py``), found by name in a registry, each with its own
options dataclass (``BackboneOptions``)."""

import importlib
import pkgutil

from .base import Backbone, BackboneConfig, BackboneOptions, State
from .registry import available_backbones, build_backbone, get_backbone_class, load_plugins, options_class, register_backbone

# Import every module of this package so that its @register_backbone decorators run (plugins: on first lookup).
for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "Backbone",
    "BackboneConfig",
    "BackboneOptions",
    "State",
    "available_backbones",
    "build_backbone",
    "get_backbone_class",
    "load_plugins",
    "options_class",
    "register_backbone",
]

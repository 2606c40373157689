"""Sequence backbones behind one protocol (see ``base.py``), found by name in a registry."""

import importlib
import pkgutil

from .base import Backbone, BackboneConfig, State
from .registry import OPTIONS, available_backbones, build_backbone, get_backbone_class, register_backbone

# Import every module of this package so that its @register_backbone decorators run.
for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = [
    "OPTIONS",
    "Backbone",
    "BackboneConfig",
    "State",
    "available_backbones",
    "build_backbone",
    "get_backbone_class",
    "register_backbone",
]

"""Device choice, seeding and where seqrl caches built artifacts."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from seqrl.errors import SeqRLError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. Otherwise a torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SeqRLError(f"Unknown device {name!r}: use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqRLError(f"--device {name} was asked for, but torch sees no CUDA device here. Use --device cpu or auto.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cache_root() -> Path:
    """``$SEQRL_CACHE_DIR`` (default ~/.cache/seqrl): compiled native kernels, inductor's compiled graphs."""
    return Path(os.environ.get("SEQRL_CACHE_DIR", Path.home() / ".cache" / "seqrl"))

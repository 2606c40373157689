"""Device choice, seeding and where seqrl caches built artifacts."""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from seqrl.core.errors import SeqRLError


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


def cpu_model() -> str:
    """The CPU's name as torch's CPU detection gives it (as the fast path's bf16 check reads it), else "unknown"."""
    return str(torch.cpu.get_capabilities().get("cpu_name") or platform.processor() or "unknown")


def cpu_isa() -> str:
    """The vector extensions that decide a CPU's float kernels (torch's CPU detection): "AMD EPYC" alone named two
    machines with different kernels, one with AVX-512 and one without."""
    caps = torch.cpu.get_capabilities()
    return " ".join(f for f in ("avx2", "fma3", "avx512_f", "avx512_bf16", "amx_bf16", "amx_tile") if caps.get(f))


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask, which taskset, a cgroup's cpuset or Slurm narrows
    (``os.cpu_count`` counts the machine's), else the machine's count where there is no mask (not Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_summary(device: torch.device) -> dict[str, str | int]:
    """What a run's figures depend on besides its config (its float kernels, its speed): recorded in done.json
    and the training log, since runs of one study may come from different machines."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    return {"cpu": cpu_model(), "isa": cpu_isa(), "cores": os.cpu_count() or 0, "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "python": platform.python_version(),
            # the simulator's version moves scores too (a model file's physics), and nothing pins it
            "mujoco": installed("mujoco"), "gymnasium": installed("gymnasium"), "numpy": installed("numpy")}

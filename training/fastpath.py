"""The update's fast path: bf16 autocast and torch.compile, each on by default only where it pays.

Both levers are decided at run time from what the device is, never assumed:

- ``precision``: ``auto`` runs the forward pass under bfloat16 autocast where it was measured to pay
  (CPUs with AMX-BF16, CUDA GPUs that support bf16) and in float32 elsewhere: a CPU with AVX512-BF16
  but no AMX was measured slower in bf16, and without either bf16 matmuls are emulated (docs/speed.md).
  ``fp32`` / ``bf16`` force one. The native scan kernels run in float32 inside an autocast
  region (``native_scan`` casts their inputs); parameters, gradients and AdamW stay float32.
- ``compile``: ``auto`` compiles the update's forward + loss with ``torch.compile`` (inductor) for the
  backbones in ``COMPILE_PAYS`` on that device type: those where ``bench/run.py --only fastpath``
  measured a gain. ``on`` / ``off`` force it. The first update pays the compile (logged); inductor's
  FX-graph and AOTAutograd caches live under ``$SEQRL_CACHE_DIR/inductor`` (default
  ~/.cache/seqrl/inductor) unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so a resumed run reuses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from seqrl.core.runtime import cache_root

Precision = Literal["auto", "fp32", "bf16"]
CompileMode = Literal["auto", "on", "off"]

# (device type) -> backbones whose update bench/run.py measured faster compiled than eager.
# Measured on a 2-core AMD EPYC (AVX2, no AVX-512), one thread (docs/speed.md): only UR-LSTM, whose
# sequential loop of small per-step ops inductor fuses (0.60x the eager update); every other backbone
# was 1.15-1.37x slower compiled. Nothing measured on CUDA.
COMPILE_PAYS: dict[str, frozenset[str]] = {"cpu": frozenset({"urlstm"}), "cuda": frozenset()}

# CPU flags whose bf16 dot products oneDNN's matmuls use, and which of them makes bf16 autocast pay.
# Measured with bench/run.py --only fastpath (one thread, B=64, K=20; README, Speed): AMX-BF16 machines
# 0.64-0.66x fp32's update time; an Intel Xeon with AVX512-BF16 but no AMX 1.41x (Transformer) and 1.43x
# (minGRU), slower: the casts cost more than its bf16 dot products save; with neither, bf16 is emulated
# (9.5-11.4x on an AMD EPYC, AVX2).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_PAYS_CPU_FLAG = "amx_bf16"


def bf16_pays(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast pays on ``device`` (CUDA with bf16; a CPU with AMX-BF16), and why (for the log)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'supports' if ok else 'does not support'} bf16"
    if device.type != "cpu":
        return False, f"no bf16 detection for device {device.type}"
    caps = torch.cpu.get_capabilities()
    name = caps.get("cpu_name") or "this CPU"
    found = [f for f in BF16_CPU_FLAGS if caps.get(f)]
    if BF16_PAYS_CPU_FLAG in found and torch.backends.mkldnn.is_available():
        return True, f"{name} has {' and '.join(f.upper().replace('_', '-') for f in found)}"
    if BF16_PAYS_CPU_FLAG in found:
        return False, f"{name} has {', '.join(found)} but this torch build has no oneDNN (mkldnn)"
    if found:
        return False, (f"{name} has AVX512-BF16 but no AMX-BF16 (bf16 autocast was measured 1.4x slower than fp32 "
                       "on such a CPU)")
    return False, f"{name} has no AMX-BF16 or AVX512-BF16 (bf16 matmuls would be emulated, slower)"


@dataclass(frozen=True)
class FastPath:
    """What the update runs with, and the log lines saying why."""

    autocast_dtype: torch.dtype | None  # None: float32, no autocast
    compile: bool
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> str:
        return "fp32" if self.autocast_dtype is None else "bf16"


def resolve_fast_path(precision: Precision, compile: CompileMode, device: torch.device, backbone: str) -> FastPath:
    """Decide both levers for this device and backbone (``auto`` = where measured to pay)."""
    notes = []
    bf16_ok, why = bf16_pays(device)
    if precision == "auto":
        use_bf16 = bf16_ok
        notes.append(f"precision auto -> {'bf16 autocast' if bf16_ok else 'fp32'}: {why}"
                     + ("" if bf16_ok else "; --precision bf16 forces bf16 autocast"))
    elif precision in ("fp32", "bf16"):
        use_bf16 = precision == "bf16"
        if use_bf16 and not bf16_ok:
            notes.append(f"precision bf16 (forced): {why}")
    else:
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if compile == "auto":
        pays = backbone in COMPILE_PAYS.get(device.type, frozenset())
        notes.append(f"compile auto -> {'on' if pays else 'off'}: torch.compile "
                     f"{'was' if pays else 'was not'} measured faster for {backbone} on {device.type}"
                     + ("" if pays else "; --compile on forces it"))
    elif compile not in ("on", "off"):
        raise ValueError(f"compile must be auto, on or off, got {compile!r}")
    else:
        pays = compile == "on"
    return FastPath(torch.bfloat16 if use_bf16 else None, pays, notes)


def inductor_cache_dir() -> Path:
    """Where inductor keeps compiled graphs: ``$TORCHINDUCTOR_CACHE_DIR``, else under seqrl's cache (not in
    /tmp, inductor's default, which a reboot or tmp cleaner empties)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    user = os.environ.get("TORCHINDUCTOR_CACHE_DIR")  # inductor sets it to its default once it has used one
    if user and os.path.abspath(user) != os.path.abspath(default_cache_dir()):
        return Path(user)
    return cache_root() / "inductor"


def compile_backend() -> str:
    """torch.compile's backend: ``$SEQRL_COMPILE_BACKEND`` (e.g. aot_eager to debug a graph without
    inductor's C++ builds), default inductor."""
    return os.environ.get("SEQRL_COMPILE_BACKEND", "inductor")


def prepare_compile() -> Path:
    """Point inductor's on-disk caches at ``inductor_cache_dir()`` and let its compile workers use no
    more threads than torch does (``--threads 1``: one). Call before the first compiled call."""
    path = inductor_cache_dir()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = max(1, min(inductor_config.compile_threads, torch.get_num_threads()))
    return path

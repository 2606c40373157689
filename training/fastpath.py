"""The update's fast path: bf16 autocast and torch.compile, each taken by ``auto`` only where this model's own
update was measured to pay on this machine.

CPUs differ from session to session (AVX2 only, AVX512-BF16 without AMX, AMX-BF16; Intel or AMD), and the same
flag pays on one and costs on another (an AVX512-BF16 Xeon ran the update 1.4x slower in bf16; an AVX512-BF16
AMD EPYC 0.6x), so no table of CPU flags decides:

- ``precision auto`` times this model's update (forward + backward on a copy, one fixed batch) in fp32 and
  under bf16 autocast, interleaved over a few rounds, and takes bf16 when its median is at most ``MARGIN`` of
  fp32's (>= 10% faster), so that noise on a busy machine does not flip it. Where bf16 is emulated (about 10x
  slower) the first bf16 call already shows it, and the timing stops there. A CUDA device keeps its rule
  (bf16 where the GPU supports it).
- ``compile auto`` is measured the same way (eager against compiled, in the chosen precision) for the
  backbones where compiling is a candidate (``COMPILE_CANDIDATES``: a sequential per-step loop that inductor
  can fuse; the parallel backbones were measured 1.15-1.37x slower compiled); the first compiled call pays the
  compile (tens of seconds, once: inductor's cache keeps the graphs). Elsewhere it stays off.

The verdict, its timings and whether they were measured now is cached per machine (CPU model and vector
extensions, torch version, threads, device) and model (agent kind, model config, data sizes, batch size) in
``$SEQRL_CACHE_DIR/fastpath.json``, so a second run or a resume does not pay again; a damaged cache is measured
again with a warning. ``--precision fp32|bf16`` and ``--compile on|off`` force a lever. The native scan kernels
run in float32 inside an autocast region; parameters, gradients and AdamW stay float32.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from seqrl.core.files import write_json
from seqrl.core.runtime import cache_root, cpu_isa, cpu_model

Precision = Literal["auto", "fp32", "bf16"]
CompileMode = Literal["auto", "on", "off"]

MARGIN = 0.9  # a lever is taken when it runs the update in at most 0.9 of the time without it
ROUNDS = 7  # paired timing rounds, after one warm-up call each
EMULATED = 2.0  # a first bf16 call this many times fp32's: emulated bf16, no more rounds needed
COMPILE_CANDIDATES: dict[str, frozenset[str]] = {"cpu": frozenset({"urlstm"}), "cuda": frozenset()}
CACHE_NAME = "fastpath.json"

# (autocast dtype or None, compiled) -> one update of the model under that variant (its first call may compile)
UpdateMaker = Callable[[torch.dtype | None, bool], Callable[[], None]]


@dataclass(frozen=True)
class FastPath:
    """What the update runs with, why (log lines), and what was measured (ms per update by variant)."""

    autocast_dtype: torch.dtype | None  # None: float32, no autocast
    compile: bool
    notes: list[str] = field(default_factory=list)
    ms: dict[str, float] = field(default_factory=dict)
    ratio: dict[str, float] = field(default_factory=dict)  # bf16 / fp32, compiled / eager (paired medians)
    source: str = "forced"  # measured (now), cache, forced (a flag), rule (CUDA), or a mix "precision/compile"

    @property
    def precision(self) -> str:
        return "fp32" if self.autocast_dtype is None else "bf16"

    def summary(self) -> dict[str, Any]:
        """What ``done.json`` and TensorBoard record."""
        return {"precision": self.precision, "compile": self.compile, "ratio": self.ratio, "ms_per_update": self.ms,
                "source": self.source, "notes": list(self.notes)}


def pays(ratio: float) -> bool:
    """The margin rule: a lever is taken when the update with it needs at most ``MARGIN`` of the time without."""
    return ratio <= MARGIN


CLOCK: Callable[[], float] = time.perf_counter  # what time_pairs reads (a test gives a clock of its own)


def time_pairs(base: Callable[[], None], other: Callable[[], None], rounds: int = ROUNDS,
               clock: Callable[[], float] | None = None) -> tuple[float, dict[str, float]]:
    """How long ``other`` takes against ``base``: the median over ``rounds`` of the two calls' ratio within a
    round (back to back, their order alternating), so that load from other processes, which comes and goes within
    a second on a busy machine, cancels; and each one's median ms. One warm-up call each first (a compile happens
    there); an ``other`` whose warm-up took ``EMULATED`` times the base's is not timed further (emulated bf16):
    the warm-ups' ratio stands for it."""
    now = clock or CLOCK

    def timed(fn: Callable[[], None]) -> float:
        t0 = now()
        fn()
        return now() - t0

    first_base, first_other = timed(base), timed(other)
    if first_other >= EMULATED * first_base:
        return first_other / first_base, {"base": 1000 * first_base, "other": 1000 * first_other}
    b, o = [], []
    for i in range(rounds):
        if i % 2:
            o.append(timed(other)), b.append(timed(base))
        else:
            b.append(timed(base)), o.append(timed(other))
    ratio = statistics.median(y / x for x, y in zip(b, o))
    return ratio, {"base": 1000 * statistics.median(b), "other": 1000 * statistics.median(o)}


def machine_key(device: torch.device) -> dict[str, Any]:
    """What a timing depends on besides the model: the CPU and its vector extensions, torch, threads, device."""
    return {"cpu": cpu_model(), "isa": cpu_isa(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


class VerdictCache:
    """Verdicts by (machine, model) in one JSON file; a damaged file is read as empty, with a warning note."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_root() / CACHE_NAME
        self.warning = ""

    @staticmethod
    def key(machine: dict[str, Any], model: dict[str, Any]) -> str:
        text = json.dumps({"machine": machine, "model": model}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            values = json.loads(self.path.read_text())
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
            return values
        except (ValueError, OSError) as e:
            self.warning = f"warning: the fast-path cache {self.path} is damaged ({e}); measuring again"
            return {}

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self._read().get(key)
        ok = isinstance(entry, dict) and isinstance(entry.get("ratio"), dict) and isinstance(entry.get("ms"), dict)
        return entry if ok else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        values = self._read()
        values[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, values)


def resolve_fast_path(precision: Precision, compile: CompileMode, device: torch.device, backbone: str,
                      make_update: UpdateMaker | None = None, model_key: dict[str, Any] | None = None,
                      cache: VerdictCache | None = None) -> FastPath:
    """Decide both levers for this model on this device: a forced value as given; ``auto`` by measurement
    (``make_update``; cached under ``model_key``), on CUDA by its rule. Without ``make_update`` (nothing to time)
    ``auto`` stays at fp32 eager and says so."""
    for name, value, choices in (("precision", precision, ("auto", "fp32", "bf16")), ("compile", compile, ("auto", "on", "off"))):
        if value not in choices:
            raise ValueError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")
    candidate = backbone in COMPILE_CANDIDATES.get(device.type, frozenset())
    measure_precision = precision == "auto" and device.type == "cpu"
    measure_compile = compile == "auto" and candidate
    notes: list[str] = []
    if device.type == "cuda" and precision == "auto":
        use_bf16 = torch.cuda.is_bf16_supported()
        notes.append(f"precision auto -> {'bf16 autocast' if use_bf16 else 'fp32'}: {torch.cuda.get_device_name(device)} "
                     f"{'supports' if use_bf16 else 'does not support'} bf16 (rule on CUDA, not measured)")
    elif precision == "auto" and device.type != "cpu":
        use_bf16 = False
        notes.append(f"precision auto -> fp32: nothing to measure on device {device.type}")
    else:
        use_bf16 = precision == "bf16"
    use_compile = compile == "on"
    if compile == "auto" and not candidate:
        notes.append(f"compile auto -> off: torch.compile is not a candidate for {backbone} on {device.type} "
                     "(--compile on forces it)")
    if not (measure_precision or measure_compile):
        return FastPath(torch.bfloat16 if use_bf16 else None, use_compile, notes, source=_source(precision, compile, device))
    if make_update is None:
        notes.append("precision auto -> fp32, compile auto -> off: no update to measure")
        return FastPath(None, False, notes, source="rule")
    cache = cache or VerdictCache()
    key = cache.key(machine_key(device), {**(model_key or {}), "backbone": backbone, "precision": precision,
                                          "compile": compile})
    entry = cache.get(key)
    if cache.warning:
        notes.append(cache.warning)
    source = "cache" if entry else "measured"
    if entry is None:
        t0 = time.perf_counter()
        entry = _measure(make_update, measure_precision, measure_compile, use_bf16)
        entry.update(seconds=round(time.perf_counter() - t0, 1), measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        cache.put(key, entry)
    ms, ratio = entry["ms"], entry["ratio"]
    when = (f"measured now in {entry.get('seconds', 0):.1f} s" if source == "measured"
            else f"cached from {entry.get('measured_at', 'an earlier run')}")
    if measure_precision:
        use_bf16 = pays(ratio["bf16"])
        notes.append(f"precision auto -> {'bf16 autocast' if use_bf16 else 'fp32'}: this model's update took "
                     f"{ratio['bf16']:.2f}x fp32's time in bf16 (median of paired rounds; {ms['bf16']:.1f} against "
                     f"{ms['fp32']:.1f} ms; bf16 is taken at <= {MARGIN:g}x), {when}"
                     + ("" if use_bf16 else "; --precision bf16 forces it"))
    if measure_compile:
        use_compile = pays(ratio["compiled"])
        notes.append(f"compile auto -> {'on' if use_compile else 'off'}: compiled {ratio['compiled']:.2f}x eager's time "
                     f"({ms['compiled']:.1f} against {ms['eager']:.1f} ms; taken at <= {MARGIN:g}x), {when}")
    return FastPath(torch.bfloat16 if use_bf16 else None, use_compile, notes, ms, ratio, source)


def _measure(make_update: UpdateMaker, precision: bool, compile: bool, bf16: bool) -> dict[str, Any]:
    """The ratios the verdicts need (``bf16``: bf16 ÷ fp32; ``compiled``: compiled ÷ eager in the precision
    chosen) and the median ms per update of each variant timed."""
    ratio: dict[str, float] = {}
    ms: dict[str, float] = {}
    if precision:
        ratio["bf16"], t = time_pairs(make_update(None, False), make_update(torch.bfloat16, False))
        ms.update(fp32=t["base"], bf16=t["other"])
        bf16 = pays(ratio["bf16"])
    if compile:
        dtype = torch.bfloat16 if bf16 else None
        ratio["compiled"], t = time_pairs(make_update(dtype, False), make_update(dtype, True))
        ms["eager"], ms["compiled"] = t["base"], t["other"]
    return {"ratio": ratio, "ms": ms}


def _source(precision: str, compile: str, device: torch.device) -> str:
    return "rule" if device.type == "cuda" and precision == "auto" else "forced"


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

"""A fast CPU scan: the sequential first-order recurrence in C (``native_scan.c``), with autograd.

On a CPU the sequential loop beats the log-space parallel scan by a wide margin
(``torch.logcumsumexp`` and its backward are slow there; see bench/). The C file is
compiled once, at first use, with the system C compiler (``cc``/``gcc``; OpenMP and
``-march=native`` when the compiler accepts them) into ``$SEQRL_CACHE_DIR`` (default
~/.cache/seqrl/kernels) and loaded with ctypes: no torch headers, so it builds in about a
second. The cached file is named by a hash of the source and of this CPU's model and
instruction-set flags, so a home directory shared by different machines never loads a
library built for another CPU. ``SEQRL_NATIVE_MARCH=0`` builds for the generic target. Without a compiler,
``available()`` is False and the pure-PyTorch log-space scan is used instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from seqrl.core.runtime import cache_root

_SRC = Path(__file__).with_name("native_scan.c")
_lib: ctypes.CDLL | None = None
# C entry points (each in an _f32 and an _f64 version): tensor pointers, then sizes, then the thread count
_KERNELS = {"scan_fwd": (4, 3), "scan_bwd": (7, 3), "sel_fwd": (8, 4), "sel_bwd": (15, 4),
            "gated_fwd": (4, 3), "gated_bwd": (8, 3)}
_tried = False


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _cpu_id() -> str:
    """This CPU's model and instruction-set flags (what ``-march=native`` depends on)."""
    import platform

    parts = [platform.machine(), platform.processor()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags", "Features", "CPU part")):
                parts.append(line)
                if len(parts) > 6:
                    break
    except OSError:
        pass
    return "\n".join(parts)


def _march() -> bool:
    return os.environ.get("SEQRL_NATIVE_MARCH", "1") != "0"


# Compile flags. -ffast-math lets gcc vectorize (reassociation, no errno) but -fno-finite-math-only keeps
# inf/NaN meaningful; the link step gets no -ffast-math, so gcc < 13 does not add crtfastmath.o (which
# would turn on flush-to-zero for the whole process). See the head of native_scan.c.
_CFLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fPIC"]


def _build_attempts(march: bool) -> list[tuple[list[str], list[str]]]:
    """(compile flags, link flags) to try in order: the fastest first, the plainest last."""
    fast = [(["-fopenmp", "-march=native", "-DSEQRL_LIBMVEC"], ["-fopenmp"]),
            (["-fopenmp", "-march=native"], ["-fopenmp"])] if march else []
    return fast + [(["-fopenmp", "-DSEQRL_LIBMVEC"], ["-fopenmp"]), (["-fopenmp"], ["-fopenmp"]), ([], [])]


def _compile(dest: Path, march: bool) -> list[str]:
    """Build ``native_scan.c`` into ``dest``; returns the compile flags of the build that worked."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc) found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        obj, so = Path(tmp) / "native_scan.o", Path(tmp) / "native_scan.so"
        errors = []
        for cflags, lflags in _build_attempts(march):
            r = subprocess.run([cc, *_CFLAGS, *cflags, "-c", str(_SRC), "-o", str(obj)], capture_output=True, text=True)
            if r.returncode == 0:
                r = subprocess.run([cc, "-shared", str(obj), "-o", str(so), *lflags, "-lm"], capture_output=True, text=True)
            if r.returncode == 0:
                os.replace(so, dest)
                return cflags
            errors.append(r.stderr.strip())
        raise RuntimeError(errors[-1][-2000:])


def library_path(march: bool | None = None, cache_dir: Path | None = None) -> Path:
    """Where the build for this source, CPU and target lives (built there on first use)."""
    march = _march() if march is None else march
    key = _SRC.read_bytes() + (f"\n{march}\n{_cpu_id()}" if march else "\ngeneric").encode()
    tag = hashlib.sha256(key).hexdigest()[:16]
    return (cache_dir or _cache_dir()) / f"native_scan_{tag}.so"


def _load() -> ctypes.CDLL | None:
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("SEQRL_NATIVE_SCAN", "1") == "0":
        return None
    path = library_path()
    try:
        if not path.is_file():
            _compile(path, _march())
        lib = ctypes.CDLL(str(path))
    except (OSError, RuntimeError) as e:
        warnings.warn(f"seqrl: the native CPU scan is unavailable ({e}); using the log-space scan.", stacklevel=3)
        return None
    for name, (n_ptr, n_long) in _KERNELS.items():
        for suf in ("f32", "f64"):
            getattr(lib, f"{name}_{suf}").argtypes = [ctypes.c_void_p] * n_ptr + [ctypes.c_long] * n_long + [ctypes.c_int]
    _lib = lib
    return lib


@torch.compiler.assume_constant_result  # torch.compile: a constant of the process, not traced (it reads files)
def available() -> bool:
    return _load() is not None


def _suffix(t: Tensor) -> str:
    if t.dtype == torch.float32:
        return "f32"
    if t.dtype == torch.float64:
        return "f64"
    raise TypeError(f"native scan supports float32/float64, got {t.dtype}")


def _kernel(name: str, *args: Tensor | int) -> None:
    """Call C kernel ``name`` in the precision of its first tensor: tensors pass as pointers, ints as sizes."""
    lib = _load()
    assert lib is not None
    fn = getattr(lib, f"{name}_{_suffix(args[0])}")
    fn(*(a.data_ptr() if isinstance(a, Tensor) else a for a in args), torch.get_num_threads())


def _compute_dtype(t: Tensor) -> torch.dtype:
    """float32/float64 run as they are; bf16 / fp16 (autocast) run in float32."""
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _needs_grad(*ts: Tensor) -> bool:
    """Whether autograd must record the call (else the forward kernel is called directly: the
    autograd machinery of an op costs ~10 us, which is most of a policy step's scan)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


# ---- the kernels as torch custom ops -------------------------------------------------------------
# Registered with torch.library (fake = output shapes, autograd = the backward kernel), so a
# torch.compile'd update calls them as opaque ops inside one graph instead of breaking the graph at
# a ctypes call. They run in float32 or float64 only: under bf16 autocast the wrappers below cast
# their inputs to float32 (the kernels run in float32 inside an autocast region).


def _op(name: str, schema: str, impl: Callable, fake: Callable) -> torch.library.CustomOpDef:
    op = torch.library.custom_op(f"seqrl::{name}", impl, mutates_args=(), schema=schema)
    op.register_fake(fake)
    return op


def _scan_forward(a: Tensor, x: Tensor, h0: Tensor) -> Tensor:
    h = torch.empty_like(x)
    _kernel("scan_fwd", a, x, h0, h, *x.shape)
    return h


def _scan_backward(a: Tensor, h: Tensor, h0: Tensor, gh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    da, dx, dh0 = torch.empty_like(a), torch.empty_like(h), torch.empty_like(h0)
    _kernel("scan_bwd", a, h, h0, gh, da, dx, dh0, *h.shape)
    return da, dx, dh0


def _selective_forward(x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """-> y (B, T, E), the last state (B, E, N) and every state hs (B, T, E, N) (kept for the backward)."""
    b, t, e = x.shape
    y, hs = torch.empty_like(x), x.new_empty(b, t, e, A.shape[1])
    _kernel("sel_fwd", x, dt, A, Bm, Cm, h0, y, hs, b, t, e, A.shape[1])
    return y, hs[:, -1].clone(), hs  # outputs of an op may not alias each other


def _selective_backward(x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor, hs: Tensor,
                        gy: Tensor, ghT: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    gx, gdt = torch.empty_like(x), torch.empty_like(dt)
    gB, gC = torch.empty_like(Bm), torch.empty_like(Cm)
    gA_part, gh0 = torch.empty_like(h0), torch.empty_like(h0)
    _kernel("sel_bwd", x, dt, A, Bm, Cm, h0, hs, gy, ghT, gx, gdt, gB, gC, gA_part, gh0, *hs.shape)
    return gx, gdt, gA_part.sum(0), gB, gC, gh0


def _gated_forward(q: Tensor, v: Tensor, h0: Tensor) -> Tensor:
    h = torch.empty_like(v)
    _kernel("gated_fwd", q, v, h0, h, *v.shape)
    return h


def _gated_backward(q: Tensor, v: Tensor, h: Tensor, h0: Tensor, gh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    dq, dv, dh0 = torch.empty_like(q), torch.empty_like(v), torch.empty_like(h0)
    _kernel("gated_bwd", q, v, h, h0, gh, dq, dv, dh0, *h.shape)
    return dq, dv, dh0


def _likes(*ts: Tensor) -> tuple[Tensor, ...]:
    return tuple(torch.empty_like(t) for t in ts)


_T3 = "(Tensor, Tensor, Tensor)"
scan_op = _op("scan", "(Tensor a, Tensor x, Tensor h0) -> Tensor", _scan_forward, lambda a, x, h0: torch.empty_like(x))
scan_bwd_op = _op("scan_bwd", f"(Tensor a, Tensor h, Tensor h0, Tensor gh) -> {_T3}", _scan_backward,
                  lambda a, h, h0, gh: _likes(a, h, h0))
selective_op = _op("selective_scan", f"(Tensor x, Tensor dt, Tensor A, Tensor Bm, Tensor Cm, Tensor h0) -> {_T3}",
                   _selective_forward, lambda x, dt, A, Bm, Cm, h0: (torch.empty_like(x), torch.empty_like(h0),
                                                                     x.new_empty(*x.shape, A.shape[1])))
selective_bwd_op = _op(
    "selective_scan_bwd",
    "(Tensor x, Tensor dt, Tensor A, Tensor Bm, Tensor Cm, Tensor h0, Tensor hs, Tensor gy, Tensor ghT)"
    " -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
    _selective_backward,
    lambda x, dt, A, Bm, Cm, h0, hs, gy, ghT: (*_likes(x, dt), torch.empty_like(A), *_likes(Bm, Cm, h0)),
)
gated_op = _op("gated_scan", "(Tensor q, Tensor v, Tensor h0) -> Tensor", _gated_forward, lambda q, v, h0: torch.empty_like(v))
gated_bwd_op = _op("gated_scan_bwd", f"(Tensor q, Tensor v, Tensor h, Tensor h0, Tensor gh) -> {_T3}", _gated_backward,
                   lambda q, v, h, h0, gh: _likes(q, v, h0))


def _save_inputs_and_output(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs, output)


def _scan_grad(ctx, gh: Tensor):
    a, _, h0, h = ctx.saved_tensors
    return scan_bwd_op(a, h, h0, gh.contiguous())


def _selective_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs, output[2])
    ctx.mark_non_differentiable(output[2])  # every state: kept for the backward only
    ctx.set_materialize_grads(False)  # no (B, T, E, N) zero gradient for it


def _selective_grad(ctx, gy: Tensor | None, ghT: Tensor | None, _ghs: Tensor | None):
    *inputs, hs = ctx.saved_tensors
    gy = torch.zeros_like(inputs[0]) if gy is None else gy.contiguous()
    ghT = torch.zeros_like(inputs[5]) if ghT is None else ghT.contiguous()
    return selective_bwd_op(*inputs, hs, gy, ghT)


def _gated_grad(ctx, gh: Tensor):
    q, v, h0, h = ctx.saved_tensors
    return gated_bwd_op(q, v, h, h0, gh.contiguous())


scan_op.register_autograd(_scan_grad, setup_context=_save_inputs_and_output)
gated_op.register_autograd(_gated_grad, setup_context=_save_inputs_and_output)
selective_op.register_autograd(_selective_grad, setup_context=_selective_setup)


def native_scan(a: Tensor, x: Tensor, h0: Tensor | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + x_t over dim 1. a, x: (B, T, ...) on the CPU; h0: (B, ...) or None (zeros)."""
    shape, dtype, run = x.shape, x.dtype, _compute_dtype(x)
    a, x, h0 = a.to(run), x.to(run), None if h0 is None else h0.to(run)
    b, t = shape[:2]
    a3 = a.expand_as(x).reshape(b, t, -1).contiguous()
    x3 = x.reshape(b, t, -1).contiguous()
    h03 = torch.zeros_like(x3[:, 0]) if h0 is None else h0.reshape(b, -1).contiguous()
    h = scan_op(a3, x3, h03) if _needs_grad(a3, x3, h03) else _scan_forward(a3, x3, h03)
    return h.view(shape).to(dtype)


def native_selective_scan(
    x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, h0: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Mamba's SSM on the CPU. x, dt: (B, T, E); A: (E, N); Bm, Cm: (B, T, N); h0: (B, E, N) or None.

    Returns y (B, T, E) with y_t = sum_n C_t h_t (no D skip) and the last state (B, E, N)."""
    h0 = x.new_zeros(x.shape[0], A.shape[0], A.shape[1]) if h0 is None else h0
    dtype = _compute_dtype(x)
    c = [v.to(dtype).contiguous() for v in (x, dt, A, Bm, Cm, h0)]
    y, h_last, _ = selective_op(*c) if _needs_grad(*c) else _selective_forward(*c)
    return y.to(x.dtype), h_last


def native_gated_scan(q: Tensor, v: Tensor, h0: Tensor | None = None) -> Tensor:
    """minGRU / minLSTM in one fused C loop: h_t = s_t h_{t-1} + (1 - s_t) g(v_t), s = sigmoid(q),
    g(v) = v + 0.5 (v >= 0) or sigmoid(v). q, v: (B, T, D) on the CPU; h0: (B, D) or None (zeros).

    The gate and candidate activations are computed inside the loop (forward and backward), so
    the layer is its two projections plus one pass over (B, T, D)."""
    dtype = _compute_dtype(v)
    q, v = q.to(dtype).contiguous(), v.to(dtype).contiguous()
    h0 = v.new_zeros(v.shape[0], v.shape[2]) if h0 is None else h0.to(dtype).contiguous()
    return gated_op(q, v, h0) if _needs_grad(q, v, h0) else _gated_forward(q, v, h0)

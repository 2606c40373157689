"""The native C kernels, side by side: this checkout's build against another revision's, interleaved.

    python bench/kernels.py                         # this build (-march=native and generic)
    python bench/kernels.py --against 8354350 --against-flags "-O3 -ffast-math"   # before / after

Each library is compiled into a temporary folder; every kernel pair (forward + backward) runs at the
training shapes of the CPU protocol (B=64, 59 tokens, width 128; Mamba: E=256, N=16) on one thread,
the libraries taking turns, and the minimum over the repetitions is reported (robust to other load).
``--against REV`` builds ``agents/backbones/native_scan.c`` as it was at REV with ``--against-flags``
(one compile-and-link step, as the old builds did).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from seqrl.agents.backbones import native_scan  # noqa: E402

SRC = "agents/backbones/native_scan.c"


def build_current(dest: Path, march: bool) -> ctypes.CDLL:
    flags = native_scan._compile(dest, march)
    print(f"  built {'-march=native' if march else 'generic'}: {' '.join(native_scan._CFLAGS + flags)}")
    return ctypes.CDLL(str(dest))


def build_rev(rev: str, flags: str, march: bool, folder: Path) -> ctypes.CDLL:
    src = folder / f"old_{rev}.c"
    src.write_text(subprocess.run(["git", "show", f"{rev}:{SRC}"], cwd=REPO, capture_output=True, text=True, check=True).stdout)
    so = folder / f"old_{rev}_{march}.so"
    cmd = ["cc", *flags.split(), "-fPIC", "-shared", "-fopenmp", *(["-march=native"] if march else []), str(src), "-o", str(so), "-lm"]
    subprocess.run(cmd, check=True)
    print(f"  built {rev}: {' '.join(cmd[1:-4])}")
    return ctypes.CDLL(str(so))


def kernels(lib: ctypes.CDLL) -> dict:
    for name, (n_ptr, n_long) in native_scan._KERNELS.items():
        getattr(lib, f"{name}_f32").argtypes = [ctypes.c_void_p] * n_ptr + [ctypes.c_long] * n_long + [ctypes.c_int]
    g = torch.Generator().manual_seed(0)
    B, T, C, E, N = 64, 59, 128, 256, 16
    r = lambda *s, scale=1.0: torch.randn(*s, generator=g) * scale  # noqa: E731
    e = torch.empty
    q, v, gh, a, h0 = r(B, T, C, scale=2), r(B, T, C, scale=2), r(B, T, C), torch.rand(B, T, C, generator=g), r(B, C)
    h, d1, d2, dh0 = e(B, T, C), e(B, T, C), e(B, T, C), e(B, C)
    x, dt, A = r(B, T, E), torch.rand(B, T, E, generator=g) * 0.1 + 1e-3, -torch.rand(E, N, generator=g) * 4
    Bm, Cm, s0, gy = r(B, T, N), r(B, T, N), torch.zeros(B, E, N), r(B, T, E)
    y, hs, gx, gdt, gB, gC, gA, gh0 = e(B, T, E), e(B, T, E, N), e(B, T, E), e(B, T, E), e(B, T, N), e(B, T, N), e(B, E, N), e(B, E, N)
    P = lambda *ts: [t.data_ptr() for t in ts]  # noqa: E731
    return {
        f"gated (minGRU/minLSTM) fwd+bwd {B}x{T}x{C}": lambda: (
            lib.gated_fwd_f32(*P(q, v, h0, h), B, T, C, 1), lib.gated_bwd_f32(*P(q, v, h, h0, gh, d1, d2, dh0), B, T, C, 1)),
        f"selective (Mamba) fwd+bwd {B}x{T}x{E}x{N}": lambda: (
            lib.sel_fwd_f32(*P(x, dt, A, Bm, Cm, s0, y, hs), B, T, E, N, 1),
            lib.sel_bwd_f32(*P(x, dt, A, Bm, Cm, s0, hs, gy, s0, gx, gdt, gB, gC, gA, gh0), B, T, E, N, 1)),
        f"plain scan fwd+bwd {B}x{T}x{C}": lambda: (
            lib.scan_fwd_f32(*P(a, q, h0, h), B, T, C, 1), lib.scan_bwd_f32(*P(a, h, h0, gh, d1, d2, dh0), B, T, C, 1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", default=None, help="git revision whose native_scan.c to build and compare")
    ap.add_argument("--against-flags", default="-O3 -ffast-math", help="compile flags of that revision's build")
    ap.add_argument("--reps", type=int, default=40, help="interleaved repetitions (10 calls each); minimum reported")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be >= 1")
    torch.set_num_threads(1)
    libs: dict[str, ctypes.CDLL] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for march in (True, False):
            tag = "native" if march else "generic"
            if args.against:
                libs[f"{args.against} {tag}"] = build_rev(args.against, args.against_flags, march, folder)
            libs[f"this {tag}"] = build_current(folder / f"this_{tag}.so", march)
        calls = {name: kernels(lib) for name, lib in libs.items()}
        first = next(iter(libs))
        print(f"\nms per call (min of {args.reps}), one thread; ratio to '{first}'\n")
        print("| kernel | " + " | ".join(libs) + " |\n|---|" + "---:|" * len(libs))
        for kernel in calls[first]:
            best = {name: float("inf") for name in libs}
            for _ in range(args.reps):
                for name in libs:
                    t0 = time.perf_counter()
                    for _ in range(10):
                        calls[name][kernel]()
                    best[name] = min(best[name], (time.perf_counter() - t0) / 10 * 1e3)
            cells = [f"{best[n]:.3f} ({best[n] / best[first]:.2f}x)" for n in libs]
            print(f"| {kernel} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

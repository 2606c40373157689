"""The native kernels from an empty cache, in both builds (-march=native and generic), on this CPU.

Each build runs the native-kernel tests in a fresh process (the library is loaded once per process),
with its own empty kernel cache. Loading the library must not change how the rest of the process
computes (a -ffast-math link turns on flush-to-zero for every thread's floats)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqrl.agents.backbones import native_scan as native

needs_native = pytest.mark.skipif(not native.available(), reason="no C compiler for the native scan")
TESTS = Path(__file__).parent


@needs_native
def test_loading_the_kernels_keeps_subnormal_floats():
    native.native_gated_scan(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))  # library loaded and called
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    assert (tiny * 1.0).item() > 0, "flush-to-zero is on: the kernel library was linked with -ffast-math"
    assert (torch.tensor([1e-310], dtype=torch.float64) * 1.0).item() > 0


@needs_native
@pytest.mark.parametrize("march", ["1", "0"], ids=["march-native", "generic"])
def test_each_build_from_an_empty_cache_passes_the_kernel_tests(march, tmp_path):
    env = {**os.environ, "SEQRL_CACHE_DIR": str(tmp_path), "SEQRL_NATIVE_MARCH": march, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "native",
         str(TESTS / "test_scans_and_gates.py"), str(TESTS / "test_native_build.py::test_loading_the_kernels_keeps_subnormal_floats")],
        env=env, capture_output=True, text=True, cwd=TESTS.parent,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-2000:]
    built = list((tmp_path / "kernels").glob("native_scan_*.so"))
    assert len(built) == 1
    assert built[0] == native.library_path(march == "1", tmp_path / "kernels")

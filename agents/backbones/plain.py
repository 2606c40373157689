"""Plain-ops mode: every backbone computes with ordinary tensor ops only.

Inside ``with plain_ops():`` no native C kernel (``native_scan.py``, called through ctypes),
no FFT and no complex tensor is used: scans run as a loop of ``h = a * h + b`` over the
tokens, S4D keeps its complex state as a real (..., 2) pair, torch's fused GRU/LSTM run as
their cell equations. The function computed is the same (tested against the default path);
the mode exists so that a policy step can be traced into a graph that ONNX Runtime or
TorchScript can run (``agents/acting.py``, ``agents/deploy.py``). It is read when a module
computes, so it must be active while tracing.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_active = False


@contextmanager
def plain_ops() -> Iterator[None]:
    """Compute with plain tensor ops (no native kernels, FFTs or complex tensors) inside this block."""
    global _active
    before, _active = _active, True
    try:
        yield
    finally:
        _active = before


def plain_ops_active() -> bool:
    return _active

"""The benchmark script runs end to end at toy sizes and writes its JSON and Markdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_every_section(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--threads", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "latest.json").read_text())
    assert {"update", "fastpath", "scan", "memory", "policy", "eval", "deploy"} <= set(res)
    assert all(v[k] > 0 for v in res["deploy"]["us_per_step"].values() for k in ("eager", "torchscript", "onnx"))
    assert res["deploy"]["mingru_matmul_floor_us"] > 0  # the matmuls-only ONNX model builds and runs
    assert set(res["fastpath"]["ratio"]["mingru"]) == {"fp32", "bf16", "compiled", "bf16+compiled", "all tokens", "fused tokens"}
    assert all(v > 0 for v in res["update"]["ms_per_update"].values())
    assert all(run["parallel_ms"] > 0 and run["step_loop_ms"] > 0 for run in res["scan"]["runs"])
    assert set(res["policy"]["us_per_step"]) == set(res["policy"]["us_per_step_batched"])
    md = (tmp_path / "latest.md").read_text()
    for heading in ("**Targets**", "**Update time**", "**Fast path of the update**", "parallel path vs step loop",
                    "**Policy cost", "Hopper evaluation", "**Exported policy"):
        assert heading in md

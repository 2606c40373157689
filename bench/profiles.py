#!/usr/bin/env python
"""Where the time goes: torch.profiler tables (top ops by self CPU time) behind the benchmark figures.

    python bench/profiles.py update transformer         # one update, B=64 K=20 (section "update")
    python bench/profiles.py policy mingru --envs 1     # recurrent and window policy calls (section "policy")
    python bench/profiles.py scan --batch 16 --T 4096    # minGRU layer, parallel path (section "scan")

Each prints the op table and the share of time in matrix multiplies (mm/addmm/bmm), which
is what bounds a CPU run when it is not per-op overhead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
MATMUL = ("aten::mm", "aten::addmm", "aten::bmm")


def report(prof, label: str, calls: int, rows: int) -> None:
    avg = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in avg)
    mm = sum(e.self_cpu_time_total for e in avg if e.key in MATMUL)
    print(f"== {label}: {total / calls / 1000:.2f} ms per call (profiled), matmul share {mm / total:.0%}")
    print(avg.table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["update", "policy", "scan"])
    ap.add_argument("backbone", nargs="?", default="mingru")
    ap.add_argument("--envs", type=int, default=1, help="policy: envs in lockstep")
    ap.add_argument("--batch", type=int, default=16, help="scan: batch")
    ap.add_argument("--T", type=int, default=4096, help="scan: sequence length")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--rows", type=int, default=15, help="op rows to print")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    if args.threads:
        torch.set_num_threads(args.threads)
    from run import _policy_costs, make_model, update_fn

    if args.what == "update":
        _, step, _ = update_fn(args.backbone, 64, 20)
        for _ in range(3):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                step()
        report(prof, f"update {args.backbone} B=64 K=20", 5, args.rows)
    elif args.what == "policy":
        m = make_model(args.backbone, 20)
        obs = np.random.default_rng(0).normal(size=(100, args.envs, 11)).astype(np.float32)
        for mode in ("recurrent", "window"):
            _policy_costs(m, mode, args.envs, obs[:30])
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                _policy_costs(m, mode, args.envs, obs)
            report(prof, f"policy {args.backbone} {mode}, {args.envs} env(s)", len(obs), args.rows)
    else:
        from seqrl.agents.backbones.mingru import MinGRULayer

        layer = MinGRULayer(128)
        x = torch.randn(args.batch, args.T, 128, requires_grad=True)
        layer(x)[0].sum().backward()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                layer(x)[0].sum().backward()
        report(prof, f"minGRU layer parallel path, B={args.batch} T={args.T}", 3, args.rows)


if __name__ == "__main__":
    main()

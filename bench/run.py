#!/usr/bin/env python
"""Benchmark suite: every figure measured side by side in one run on this machine.

    python bench/run.py                      # all sections, JSON + Markdown into bench/results/
    python bench/run.py --only update scan   # some sections
    python bench/run.py --quick              # tiny sizes: checks the script runs (tests/test_bench.py)

Sections
  update  update time (forward + backward + AdamW) of the Decision model per backbone at
          B=64, K=20, width 128, 3 layers; the Transformer against its FLOP floor
          (counted FLOPs / measured matmul rate); per-token update time at K=1000 (3,000 tokens)
  fastpath  update time per backbone in fp32, bf16 autocast, torch.compile'd and both, and with the last
          layers at every token ("all tokens", the model before they ran at the read tokens only),
          and with one token per timestep ("fused tokens", --tokens fused), interleaved, as ratios
          to fp32, and each compile's time (--backbones, --variants to pick some)
  scan    one minGRU layer trained through its parallel path vs its step loop, T = 512, 4096
  memory  peak resident memory of one update per backbone (each in a fresh process)
  policy  policy cost per env step over a 1,000-step episode, recurrent vs window, vs t
  acting  policy cost per env step for 10 envs, fp32 against bf16 autocast, window and recurrent
  eval    wall time of a 10-episode Hopper evaluation, vectorized vs one-env, and the simulator's share
  deploy  µs per env step of the exported policy (export.py) per backbone, 1 env and 10 envs, one thread:
          eager PyTorch policy vs TorchScript vs ONNX Runtime (recurrent; the transformer: window)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from seqrl.agents.backbones import available_backbones, get_backbone_class

HERE = Path(__file__).resolve().parent
BACKBONES = [b for b in available_backbones() if get_backbone_class(b).__module__.startswith("seqrl.")]  # built in


def timeit(fn: Callable[[], object], reps: int, warmup: int = 2) -> float:
    """Median seconds per call (after ``warmup`` calls; a call over 10 s is timed once more only)."""
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        if time.perf_counter() - t0 > 10:
            reps = 1
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_growth_mib(fn: Callable[[], object], calls: int = 2) -> float:
    """Peak resident memory above the current one while ``fn`` runs ``calls`` times (MiB).

    Linux: the high-water mark is reset first (``/proc/self/clear_refs``); elsewhere the
    process's peak (ru_maxrss) before and after, which misses peaks below an earlier one."""
    import gc

    gc.collect()
    try:
        base = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        for _ in range(calls):
            fn()
        return (_status_kib("VmHWM") - base) / 1024
    except (OSError, KeyError):
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(calls):
            fn()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024


def make_model(backbone: str, k: int, width: int = 128, layers: int = 3, tokens: str = "interleaved"):
    from seqrl.agents import DecisionModel, ModelConfig

    torch.manual_seed(0)
    return ModelConfig(backbone=backbone, width=width, n_layers=layers,
                                     context_len=k, max_ep_len=max(1000, k), tokens=tokens).create(11, 3)


def update_fn(backbone: str, b: int, k: int, bf16: bool = False, compiled: bool = False, fused: bool = False,
              backend: str = "inductor", read_tokens_only: bool = True, tokens: str = "interleaved"):
    """One update (forward + backward + clip + AdamW) of a fresh model on a fixed random batch. ``bf16``:
    bf16 autocast of the forward; ``compiled``: forward + loss through torch.compile (``backend``); ``fused``:
    fused AdamW (as the trainer); ``tokens``: the model's token layout."""
    from seqrl.agents.model import masked_action_mse

    m = make_model(backbone, k, tokens=tokens)
    m.read_tokens_only = read_tokens_only
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-4, fused=fused)
    g = torch.Generator().manual_seed(0)
    r, s, a = torch.randn(b, k, 1, generator=g), torch.randn(b, k, 11, generator=g), torch.rand(b, k, 3, generator=g) * 2 - 1
    ts = torch.arange(k).repeat(b, 1) % 1000
    mask = torch.ones(b, k, dtype=torch.bool)

    def forward_loss(r, s, a, ts, mask):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = m(r, s, a, ts)
        return masked_action_mse(pred.float(), a, mask)

    loss_fn = torch.compile(forward_loss, dynamic=False, backend=backend) if compiled else forward_loss

    def step():
        loss = loss_fn(r, s, a, ts, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 0.25)
        opt.step()

    return m, step, (r, s, a, ts)


def matmul_gflops(reps: int) -> float:
    x, w = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / timeit(lambda: x @ w, reps) / 1e9


def update_flops(backbone: str, b: int, k: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    _, step, _ = update_fn(backbone, b, k)
    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def section_update(q: bool) -> dict:
    b, k, reps = (8, 5, 2) if q else (64, 20, 15)
    out: dict = {"B": b, "K": k, "ms_per_update": {}}
    for name in BACKBONES:
        _, step, _ = update_fn(name, b, k)
        out["ms_per_update"][name] = 1000 * timeit(step, reps)
        print(f"  update {name}: {out['ms_per_update'][name]:.1f} ms", flush=True)
    rate = matmul_gflops(3 if q else 10)
    out["matmul_gflops"] = rate
    # matmul FLOPs (mm/bmm/addmm/conv/attention) of one update; the floor = FLOPs / the 2048^2 matmul rate
    # (torch's FlopCounterMode does not see fused RNN cells, so gru/lstm are left out; s4d's FFTs are not counted)
    out["gflop_per_update"] = {n: update_flops(n, b, k) / 1e9 for n in BACKBONES if n not in ("gru", "lstm")}
    out["flop_floor_ms"] = {n: 1000 * f / rate for n, f in out["gflop_per_update"].items()}
    out["transformer_gflop_per_update"] = out["gflop_per_update"]["transformer"]
    out["transformer_flop_floor_ms"] = out["flop_floor_ms"]["transformer"]
    t = out["ms_per_update"]["transformer"]
    out["ratios"] = {f"{n}/transformer": v / t for n, v in out["ms_per_update"].items()}
    out["ratios"]["transformer/flop_floor"] = t / out["transformer_flop_floor_ms"]
    # long context: per-token update time at K=1000 (3,000 tokens)
    kl, bl, reps_l = (50, 1, 1) if q else (1000, 2, 3)
    out["long"] = {"K": kl, "B": bl, "us_per_token": {}}
    for name in ["transformer", "mingru", "minlstm", "s4d", "mamba"]:
        _, step, _ = update_fn(name, bl, kl)
        out["long"]["us_per_token"][name] = 1e6 * timeit(step, reps_l, warmup=1) / (bl * 3 * kl)
        print(f"  long {name}: {out['long']['us_per_token'][name]:.1f} us/token", flush=True)
    lt = out["long"]["us_per_token"]
    out["ratios"]["long transformer/mingru per token"] = lt["transformer"] / lt["mingru"]
    return out


# variant -> (bf16 autocast, torch.compile, last layers at the read tokens only, token layout); "all tokens" is the
# model before the last layers ran at the read tokens only; "fused tokens" the one-token-per-step layout (--tokens fused)
FAST_VARIANTS = {"fp32": (False, False, True, "interleaved"), "bf16": (True, False, True, "interleaved"),
                 "compiled": (False, True, True, "interleaved"), "bf16+compiled": (True, True, True, "interleaved"),
                 "all tokens": (False, False, False, "interleaved"), "fused tokens": (False, False, True, "fused")}


def section_fastpath(q: bool, backbones: list[str] | None = None, variants: list[str] | None = None) -> dict:
    """The update's fast path per backbone: fp32, bf16 autocast, torch.compile and both, B=64 K=20, fused AdamW
    (as the trainer). The variants' calls are interleaved (one of each per round) so that load from other
    processes hits them alike; a ratio is the median over rounds of the ratio within a round. The first compiled
    call (the compile) is timed apart."""
    from seqrl.training.fastpath import COMPILE_CANDIDATES, MARGIN, pays, prepare_compile

    b, k, rounds = (8, 5, 3) if q else (64, 20, 15)
    names = backbones or (["mingru"] if q else BACKBONES)
    backend = "aot_eager" if q else "inductor"  # --quick checks the script, not inductor's C++ build (minutes)
    cache = prepare_compile()
    out: dict = {"B": b, "K": k, "rounds": rounds, "backend": backend, "margin": MARGIN, "auto": {},
                 "inductor_cache": str(cache), "ms": {}, "ratio": {}, "compile_s": {}}
    for name in names:
        chosen = {v: FAST_VARIANTS[v] for v in ["fp32", *(variants or FAST_VARIANTS)] if v in FAST_VARIANTS}
        steps = {v: update_fn(name, b, k, bf16=bf, compiled=c, fused=True, backend=backend, read_tokens_only=r,
                              tokens=tok)[1]
                 for v, (bf, c, r, tok) in chosen.items()}
        out["compile_s"][name] = {}
        for v, step in steps.items():  # first call (compile for the compiled variants), then one warm-up
            t0 = time.perf_counter()
            step()
            if chosen[v][1]:
                out["compile_s"][name][v] = time.perf_counter() - t0
            step()
        times: dict[str, list[float]] = {v: [] for v in steps}
        for _ in range(rounds):
            for v, step in steps.items():
                t0 = time.perf_counter()
                step()
                times[v].append(time.perf_counter() - t0)
        out["ms"][name] = {v: 1000 * statistics.median(t) for v, t in times.items()}
        # the median of each round's ratio, as the trainer's --precision auto measures it (training.fastpath.time_pairs)
        out["ratio"][name] = {v: statistics.median(x / f for x, f in zip(times[v], times["fp32"])) for v in steps}
        out["auto"][name] = auto_verdict(out["ratio"][name], name in COMPILE_CANDIDATES["cpu"], pays)
        print(f"  fastpath {name}: " + ", ".join(f"{v} {out['ms'][name][v]:.1f} ms (x{out['ratio'][name][v]:.2f})"
                                                 for v in steps)
              + "; compile " + ", ".join(f"{v} {t:.0f} s" for v, t in out["compile_s"][name].items())
              + f"; --precision/--compile auto here: {out['auto'][name]}", flush=True)
    return out


def auto_verdict(ratio: dict[str, float], candidate: bool, pays: Callable[[float], bool]) -> str:
    """What ``--precision auto`` / ``--compile auto`` decide from these ratios to fp32, by the trainer's own rule
    (``training.fastpath.pays``): the bench and the trainer can never disagree on the same figures."""
    if "bf16" not in ratio:
        return "precision not timed"
    bf16 = pays(ratio["bf16"])
    timed = "bf16+compiled" if bf16 else "compiled"
    if not candidate:
        compile = "off (not a candidate)"
    elif timed in ratio:
        compile = "on" if pays(ratio[timed] / (ratio["bf16"] if bf16 else 1.0)) else "off"
    else:
        compile = "not timed"
    return f"precision {'bf16' if bf16 else 'fp32'}, compile {compile}"


def section_scan(q: bool) -> dict:
    """One minGRU layer, forward + backward, parallel path vs step loop. The paper's comparison is on a GPU,
    where the step loop is launch-bound at any batch; on a CPU the parallel path is bound by the
    projections' FLOPs, which grow with B, so the ratio is reported at B = 1 and at B = 16."""
    from seqrl.agents.backbones.mingru import MinGRULayer

    torch.manual_seed(0)
    d = 16 if q else 128
    out: dict = {"D": d, "runs": []}
    for b in ([2] if q else [1, 16]):
        for t in ([64] if q else [512, 4096]):
            layer = MinGRULayer(d)
            x = torch.randn(b, t, d, requires_grad=True)

            def parallel():
                layer(x)[0].sum().backward()

            def loop():  # unbind: x[:, i] would cost a full-size zero gradient per step in the backward
                h, ys = layer.initial_state(b, x.device, x.dtype), []
                for x_t in x.unbind(1):
                    y, h = layer.step(x_t, h)
                    ys.append(y)
                torch.stack(ys, 1).sum().backward()

            par = timeit(parallel, 3 if q else 10)
            seq = timeit(loop, 1 if q else 3, warmup=1)
            out["runs"].append({"B": b, "T": t, "parallel_ms": 1000 * par, "step_loop_ms": 1000 * seq, "speedup": seq / par})
            print(f"  scan B={b} T={t}: parallel {1000 * par:.2f} ms, loop {1000 * seq:.1f} ms, x{seq / par:.0f}", flush=True)
    return out


def _peak_child(backbone: str, b: int, k: int) -> float:
    code = (
        "import sys; sys.path.insert(0, %r); import torch; torch.set_num_threads(%d);"
        "from run import update_fn, peak_growth_mib; _, step, _ = update_fn(%r, %d, %d); "
        "print(peak_growth_mib(step))"
    ) % (str(HERE), torch.get_num_threads(), backbone, b, k)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def section_memory(q: bool) -> dict:
    sizes = [(8, 5)] if q else [(64, 20), (2, 1000)]
    out: dict = {"note": "peak RSS above the built model (MiB) over its first two updates (activations, gradients, "
                         "optimizer state), each backbone in a fresh process", "MiB": {}}
    for b, k in sizes:
        key = f"B={b},K={k}"
        out["MiB"][key] = {}
        for name in BACKBONES if not q else ["transformer", "mingru"]:
            out["MiB"][key][name] = _peak_child(name, b, k)
            print(f"  memory {key} {name}: {out['MiB'][key][name]:.0f} MiB", flush=True)
    return out


def _policy_costs(m, mode: str, n_envs: int, obs: np.ndarray, bf16: bool = False) -> list[float]:
    """Seconds per ``act`` call over one episode of len(obs) steps for ``n_envs`` envs in lockstep (``bf16``:
    under bf16 autocast)."""
    from seqrl.agents import SequencePolicy

    pol = SequencePolicy(m, np.zeros(11), np.ones(11), 1000.0, mode)
    pol.reset(np.full(n_envs, 3600.0))
    per = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for t in range(len(obs)):
            t0 = time.perf_counter()
            pol.act(obs[t])
            per.append(time.perf_counter() - t0)
            pol.observe(np.ones(n_envs))
    return per


def section_policy(q: bool) -> dict:
    """Cost of one policy call per env step: one env (by t), and 10 envs in lockstep (the vectorized evaluation)."""
    steps = 60 if q else 1000
    buckets = [0, 10, 19, 50, 100, 500, 999] if not q else [0, 10, 59]
    n_batched = 10
    out: dict = {"episode_steps": steps, "n_batched": n_batched, "us_per_step": {}, "us_per_step_batched": {}}
    obs = np.random.default_rng(0).normal(size=(steps, n_batched, 11)).astype(np.float32)
    for name in ["transformer", "mingru", "minlstm", "s4d", "mamba", "urlstm"]:
        m = make_model(name, 20)
        for mode in ("window", "recurrent"):
            per = _policy_costs(m, mode, 1, obs[:, :1])
            out["us_per_step"][f"{name}/{mode}"] = {
                "mean": 1e6 * float(np.mean(per)),
                "by_t": {t: 1e6 * float(np.median(per[max(0, t - 5) : t + 5])) for t in buckets},
            }
            # the batched run: a shorter episode (cost per step is flat beyond K for both modes)
            per = _policy_costs(m, mode, n_batched, obs[: min(steps, 200)])
            out["us_per_step_batched"][f"{name}/{mode}"] = 1e6 * float(np.mean(per[40:] if not q else per))
        w, r = out["us_per_step"][f"{name}/window"]["mean"], out["us_per_step"][f"{name}/recurrent"]["mean"]
        wb, rb = out["us_per_step_batched"][f"{name}/window"], out["us_per_step_batched"][f"{name}/recurrent"]
        print(f"  policy {name}: 1 env window {w:.0f} us, recurrent {r:.0f} us (x{w / r:.1f}); "
              f"{n_batched} envs window {wb:.0f} us, recurrent {rb:.0f} us (x{wb / rb:.1f})", flush=True)
    return out


def section_acting(q: bool) -> dict:
    """Does bf16 autocast help acting? One policy call per env step for 10 envs in lockstep (the vectorized
    evaluation), window and recurrent, fp32 against bf16 autocast: episodes of 200 steps (the cost is flat past
    K), back to back in rounds with their order alternating, the median of the rounds' ratios (as the trainer's
    --precision auto times the update), with what its rule (``training.fastpath.pays``) would take."""
    from seqrl.training.fastpath import pays

    steps, rounds, n = (30, 2, 2) if q else (200, 5, 10)
    obs = np.random.default_rng(0).normal(size=(steps, n, 11)).astype(np.float32)
    out: dict = {"steps": steps, "rounds": rounds, "n_envs": n, "us_per_step": {}, "ratio": {}, "bf16_pays": {}}
    for name in (["mingru"] if q else ["transformer", "mingru"]):
        m = make_model(name, 20).eval()
        for mode in ("window", "recurrent"):
            runs: dict[bool, list[float]] = {False: [], True: []}
            for i in range(rounds):
                for bf16 in ((False, True) if i % 2 == 0 else (True, False)):
                    runs[bf16].append(float(np.mean(_policy_costs(m, mode, n, obs, bf16)[10:])))
            key = f"{name}/{mode}"
            ratio = statistics.median(b / f for f, b in zip(runs[False], runs[True]))
            out["us_per_step"][key] = {"fp32": 1e6 * statistics.median(runs[False]), "bf16": 1e6 * statistics.median(runs[True])}
            out["ratio"][key], out["bf16_pays"][key] = ratio, pays(ratio)
            print(f"  acting {key}, {n} envs: fp32 {out['us_per_step'][key]['fp32']:.0f} us, bf16 "
                  f"{out['us_per_step'][key]['bf16']:.0f} us per step (bf16 / fp32 {ratio:.2f}: "
                  f"{'pays' if pays(ratio) else 'does not pay'})", flush=True)
    return out


class TimedEnv:
    """Wraps an env to count the seconds spent inside ``step``."""

    total = 0.0

    def __init__(self, env):
        self.env = env

    def __getattr__(self, k):
        return getattr(self.env, k)

    def step(self, a):
        t0 = time.perf_counter()
        out = self.env.step(a)
        TimedEnv.total += time.perf_counter() - t0
        return out


def section_eval(q: bool) -> dict:
    import gymnasium as gym

    from seqrl.agents import SequencePolicy
    from seqrl.envs import run_episodes, run_episodes_vectorized

    episodes = 2 if q else 10
    max_steps = 50 if q else 1000
    out: dict = {"episodes": episodes, "max_steps": max_steps, "s": {}}
    m = make_model("mingru", 20)
    # an untrained policy falls early, so episodes are made full length by ignoring termination
    env_fn = lambda: TimedEnv(gym.make("Hopper-v5", max_episode_steps=max_steps, terminate_when_unhealthy=False))  # noqa: E731
    for mode in ("window", "recurrent"):
        pol = SequencePolicy(m, np.zeros(11), np.ones(11), 1000.0, mode)
        with torch.inference_mode():  # warm-up (first calls allocate and compile)
            run_episodes_vectorized(lambda: gym.make("Hopper-v5", max_episode_steps=5), pol, 3600.0, 2)
        TimedEnv.total = 0.0
        t0 = time.perf_counter()
        with torch.inference_mode():
            run_episodes(env_fn(), pol, 3600.0, episodes)
        one, sim_one = time.perf_counter() - t0, TimedEnv.total
        TimedEnv.total = 0.0
        t0 = time.perf_counter()
        with torch.inference_mode():
            run_episodes_vectorized(env_fn, pol, 3600.0, episodes)
        vec, sim_vec = time.perf_counter() - t0, TimedEnv.total
        out["s"][mode] = {"one_env": one, "vectorized": vec, "speedup": one / vec,
                          "sim_share_one_env": sim_one / one, "sim_share_vectorized": sim_vec / vec}
        print(f"  eval {mode}: one-env {one:.1f}s, vectorized {vec:.1f}s (x{one / vec:.1f}); "
              f"simulator share {sim_one / one:.0%} / {sim_vec / vec:.0%}", flush=True)
    return out


def _act_costs(policies: dict, n_envs: int, obs: np.ndarray, rounds: int, skip: int) -> dict[str, float]:
    """µs per ``act`` call for each policy over len(obs)-step episodes of ``n_envs`` envs, the first ``skip``
    steps untimed; the policies take turns, ``rounds`` episodes each, and the median episode counts."""
    per: dict[str, list[float]] = {k: [] for k in policies}
    for _ in range(rounds):
        for name, pol in policies.items():
            pol.reset(np.full(n_envs, 3600.0))
            total = 0.0
            with torch.inference_mode():
                for t in range(len(obs)):
                    t0 = time.perf_counter()
                    pol.act(obs[t, :n_envs])
                    if t >= skip:
                        total += time.perf_counter() - t0
                    pol.observe(np.ones(n_envs))
            per[name].append(1e6 * total / (len(obs) - skip))
    return {k: statistics.median(v) for k, v in per.items()}


DEPLOY_BACKBONES = list(BACKBONES)  # --deploy-backbones


def _ort_matmul_floor_us(model: torch.nn.Module, rows: int, reps: int) -> float:
    """µs for ONNX Runtime (one thread) to run only the model's weight matmuls, each on ``rows`` input rows:
    the floor under any exported step that feeds ``rows`` tokens through every Linear layer once."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, inputs, outputs = [], [], [], []
    for i, lin in enumerate(x for x in model.modules() if isinstance(x, torch.nn.Linear)):
        w = lin.weight.detach().float().t().contiguous().numpy()  # (in, out)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [rows, w.shape[0]]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [rows, w.shape[1]]))
        nodes.append(helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"y{i}"]))
    graph = helper.make_graph(nodes, "matmuls", inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.normal(size=i.shape).astype(np.float32) for i in sess.get_inputs()}
    onnx.checker.check_model(proto)
    return timeit(lambda: sess.run(None, feeds), reps, warmup=20) * 1e6


def section_deploy(q: bool) -> dict:
    """The exported policy step (export.py) run by seqrl.runner, against the eager PyTorch policy."""
    import tempfile

    from seqrl.agents import AgentBundle, SequencePolicy
    from seqrl.agents.deploy import default_rollout, export_policy
    from seqrl.datasets import DatasetInfo
    from seqrl.runner import load_policy
    from seqrl.core.tasks import TASKS

    steps, skip, rounds = (12, 2, 1) if q else (220, 20, 3)
    hopper = TASKS["hopper"]
    info = DatasetInfo("bench", "d4rl", "-", "hopper", hopper.d4rl_env_id, "", *hopper.ref_scores)
    obs = np.random.default_rng(0).normal(size=(steps, 10, 11)).astype(np.float32)
    out: dict = {"steps": steps - skip, "rounds": rounds, "ort_threads": 1, "us_per_step": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in DEPLOY_BACKBONES if not q else ["transformer", "mingru"]:
            m = make_model(name, 20).eval()
            bundle = AgentBundle(m, np.zeros(11), np.ones(11), 1000.0, [3600.0], info, 0, {})
            rollout = default_rollout(bundle)
            policies = {"eager": SequencePolicy(m, np.zeros(11), np.ones(11), 1000.0, rollout)}
            for fmt in ("torchscript", "onnx"):
                path = Path(tmp) / f"{name}.{fmt}"
                export_policy(bundle, path, fmt, rollout)
                policies[fmt] = load_policy(path, threads=1)  # ONNX Runtime: one intra-op thread
            torch.set_num_threads(1)
            for n_envs in (1, 10):
                us = _act_costs(policies, n_envs, obs, rounds, skip)
                out["us_per_step"][f"{name}/{n_envs}"] = {"rollout": rollout, **us}
                print(f"  deploy {name} ({rollout}), {n_envs} env(s): eager {us['eager']:.0f} us, torchscript "
                      f"{us['torchscript']:.0f} us, onnxruntime {us['onnx']:.0f} us (x{us['eager'] / us['onnx']:.1f})",
                      flush=True)
            if name == "mingru":  # the step's Linear layers, 3 tokens (a_{t-1}, R^_t, s_t) through each once
                out["mingru_matmul_floor_us"] = _ort_matmul_floor_us(m, 3, 20 if q else 2000)
                print(f"  deploy mingru: its weight matmuls alone in ONNX Runtime (3 rows each): "
                      f"{out['mingru_matmul_floor_us']:.0f} us", flush=True)
    return out


SECTIONS = {"update": section_update, "fastpath": section_fastpath, "scan": section_scan, "memory": section_memory,
            "policy": section_policy, "acting": section_acting, "eval": section_eval, "deploy": section_deploy}


def targets(res: dict) -> list[tuple[str, str, str]]:
    """(figure, target, measured) for the targets of the benchmark issue that this run measured."""
    rows = []
    if "update" in res:
        r = res["update"]["ratios"]
        rows += [(f"update time {n} ÷ transformer, B={res['update']['B']} K={res['update']['K']}", "≤ 0.8", f"{r[f'{n}/transformer']:.2f}")
                 for n in ("mingru", "minlstm")]
        rows.append(("update time transformer ÷ FLOP floor", "≤ 1.5", f"{r['transformer/flop_floor']:.2f}"))
        rows.append((f"per-token update time transformer ÷ minGRU, {3 * res['update']['long']['K']} tokens", "≥ 5",
                     f"{r['long transformer/mingru per token']:.1f}"))
    if "fastpath" in res:
        rows += [(f"update time {v} ÷ fp32, {n}", "< 1 to be on by default", f"{r[v]:.2f}")
                 for n, r in res["fastpath"]["ratio"].items() for v in ("bf16", "compiled") if v in r and n in ("transformer", "mingru")]
    if "scan" in res:
        t_max = max(v["T"] for v in res["scan"]["runs"])
        rows += [(f"minGRU layer parallel ÷ step loop, T={v['T']}, B={v['B']}", "≥ 500×", f"{v['speedup']:.0f}×")
                 for v in res["scan"]["runs"] if v["T"] == t_max]
    if "policy" in res:
        p, pb, nb = res["policy"]["us_per_step"], res["policy"]["us_per_step_batched"], res["policy"]["n_batched"]
        for n in ("mingru", "minlstm"):
            rows.append((f"policy cost window ÷ recurrent, {n}, 1 env", "≥ 5", f"{p[f'{n}/window']['mean'] / p[f'{n}/recurrent']['mean']:.1f}"))
            rows.append((f"policy cost window ÷ recurrent, {n}, {nb} envs", "≥ 5", f"{pb[f'{n}/window'] / pb[f'{n}/recurrent']:.1f}"))
        for n in ("mingru", "transformer"):
            by_t = p[f"{n}/recurrent"]["by_t"]
            t_last, t_k = max(by_t), 19 if 19 in by_t else min(by_t)
            rows.append((f"{n} recurrent cost at t={t_last} ÷ at t={t_k}", "flat (≈ 1) for recurrent",
                         f"{by_t[t_last] / by_t[t_k]:.2f}"))
    if "deploy" in res and "mingru/1" in res["deploy"]["us_per_step"]:
        d = res["deploy"]["us_per_step"]["mingru/1"]
        rows.append(("ONNX Runtime recurrent minGRU step, 1 env, one thread", "≤ 50 µs", f"{d['onnx']:.0f} µs"))
        rows.append(("eager ÷ ONNX Runtime, recurrent minGRU step, 1 env", "≥ 7×", f"{d['eager'] / d['onnx']:.1f}×"))
        if "mingru_matmul_floor_us" in res["deploy"]:
            rows.append(("minGRU step's weight matmuls alone (ONNX Runtime, 3 rows each, one thread)", "(floor)",
                         f"{res['deploy']['mingru_matmul_floor_us']:.0f} µs"))
    if "eval" in res:
        rows += [(f"{res['eval']['episodes']}-episode Hopper evaluation, one-env ÷ vectorized, {m}", "≥ 3×", f"{v['speedup']:.1f}×")
                 for m, v in res["eval"]["s"].items()]
    return rows


def markdown(res: dict) -> str:
    lines = [f"Machine: {res['machine']}, torch {res['torch']}, {res['threads']} threads.", ""]
    rows = targets(res)
    if rows:
        lines += ["**Targets** (ratios from this run):", "", "| figure | target | measured |", "|---|---|---:|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows] + [""]
    if "update" in res:
        u = res["update"]
        lines += [f"**Update time**, B={u['B']}, K={u['K']} (ms, median), and per token at K={u['long']['K']} (µs):", "",
                  "| backbone | ms / update | ÷ transformer | matmul GFLOP | ÷ FLOP floor | µs / token at K=%d |" % u["long"]["K"],
                  "|---|---:|---:|---:|---:|---:|"]
        for n, v in u["ms_per_update"].items():
            lt = u["long"]["us_per_token"].get(n)
            gf, fl = u["gflop_per_update"].get(n), u["flop_floor_ms"].get(n)
            lines.append(f"| {n} | {v:.1f} | {u['ratios'][f'{n}/transformer']:.2f} | {'-' if gf is None else f'{gf:.2f}'} | "
                         f"{'-' if fl is None else f'{v / fl:.2f}'} | {'-' if lt is None else f'{lt:.1f}'} |")
        lines += ["", "Matmul GFLOP: mm/bmm/addmm/convolution/attention FLOPs of one update counted by torch's FlopCounterMode "
                  "(not elementwise work, FFTs (s4d) or fused RNN cells (gru, lstm: not counted)); FLOP floor = those FLOPs "
                  "at the measured 2048x2048 matmul rate.", "", f"Transformer FLOP floor: {u['transformer_gflop_per_update']:.2f} GFLOP at {u['matmul_gflops']:.0f} GFLOP/s "
                  f"= {u['transformer_flop_floor_ms']:.1f} ms; measured ÷ floor = {u['ratios']['transformer/flop_floor']:.2f}. "
                  f"Per-token transformer ÷ minGRU at K={u['long']['K']}: {u['ratios']['long transformer/mingru per token']:.1f}.", ""]
    if "fastpath" in res:
        f = res["fastpath"]
        vs = [v for v in FAST_VARIANTS if any(v in ms for ms in f["ms"].values())]
        lines += [f"**Fast path of the update**, B={f['B']}, K={f['K']}, fused AdamW: median ms over {f['rounds']} interleaved "
                  f"rounds, and ÷ fp32; what --precision / --compile auto take from these timings (a lever at ≤ "
                  f"{f['margin']:g} of the time without it):", "",
                  "| backbone | " + " | ".join(f"{v} ms" for v in vs) + " | " + " | ".join(f"{v} ÷ fp32" for v in vs[1:])
                  + " | first compile s (compiled / bf16+compiled) | auto here |", "|---|" + "---:|" * (2 * len(vs)) + "---|"]
        for n, ms in f["ms"].items():
            cs = f["compile_s"][n]
            lines.append(f"| {n} | " + " | ".join(f"{ms[v]:.1f}" if v in ms else "-" for v in vs) + " | "
                         + " | ".join(f"{f['ratio'][n][v]:.2f}" if v in ms else "-" for v in vs[1:])
                         + " | " + " / ".join(f"{cs[v]:.0f}" if v in cs else "-" for v in ("compiled", "bf16+compiled"))
                         + f" | {f['auto'][n]} |")
        lines.append("")
    if "scan" in res:
        lines += [f"**minGRU layer (D={res['scan']['D']}), parallel path vs step loop** (forward + backward):", "",
                  "| B | T | parallel ms | step loop ms | speed-up |", "|---:|---:|---:|---:|---:|"]
        lines += [f"| {v['B']} | {v['T']} | {v['parallel_ms']:.2f} | {v['step_loop_ms']:.1f} | {v['speedup']:.0f}× |" for v in res["scan"]["runs"]] + [""]
    if "memory" in res:
        mem = res["memory"]["MiB"]
        keys = list(mem)
        lines += ["**Peak memory of training** (MiB above the built model, over its first two updates: activations, "
                  "gradients, AdamW state; each backbone in a fresh process):", "", "| backbone | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for n in mem[keys[0]]:
            lines.append(f"| {n} | " + " | ".join(f"{mem[k][n]:.0f}" for k in keys) + " |")
        lines.append("")
    if "policy" in res:
        p = res["policy"]["us_per_step"]
        names = sorted({k.split("/")[0] for k in p}, key=lambda n: BACKBONES.index(n))
        ts = list(next(iter(p.values()))["by_t"])
        pb, nb = res["policy"]["us_per_step_batched"], res["policy"]["n_batched"]
        lines += [f"**Policy cost per env step** (µs, mean over a {res['policy']['episode_steps']}-step episode; window ÷ recurrent) "
                  f"for 1 env and for {nb} envs in lockstep, and the 1-env recurrent cost at step t:", "",
                  f"| backbone | window | recurrent | ratio | window ({nb} envs) | recurrent ({nb} envs) | ratio ({nb} envs) | "
                  + " | ".join(f"t={t}" for t in ts) + " |", "|---|" + "---:|" * (6 + len(ts))]
        for n in names:
            w, r = p[f"{n}/window"], p[f"{n}/recurrent"]
            wb, rb = pb[f"{n}/window"], pb[f"{n}/recurrent"]
            lines.append(f"| {n} | {w['mean']:.0f} | {r['mean']:.0f} | {w['mean'] / r['mean']:.1f} | {wb:.0f} | {rb:.0f} | {wb / rb:.1f} | "
                         + " | ".join(f"{r['by_t'][t]:.0f}" for t in ts) + " |")
        lines.append("")
    if "eval" in res:
        e = res["eval"]
        lines += [f"**{e['episodes']}-episode Hopper evaluation** ({e['max_steps']} steps each), seconds:", "",
                  "| rollout | one-env loop | vectorized | speed-up | simulator share (one-env / vectorized) |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {m} | {v['one_env']:.1f} | {v['vectorized']:.1f} | {v['speedup']:.1f}× | {v['sim_share_one_env']:.0%} / {v['sim_share_vectorized']:.0%} |" for m, v in e["s"].items()]
        lines.append("")
    if "deploy" in res:
        d = res["deploy"]["us_per_step"]
        names = sorted({k.split("/")[0] for k in d}, key=lambda n: BACKBONES.index(n))
        lines += [f"**Exported policy, µs per env step** (one thread; mean over {res['deploy']['steps']} steps, median of "
                  f"{res['deploy']['rounds']} episodes taken in turns; eager = the PyTorch SequencePolicy):", "",
                  "| backbone | rollout | eager, 1 env | TorchScript | ONNX Runtime | eager ÷ ORT | eager, 10 envs | "
                  "TorchScript | ONNX Runtime | eager ÷ ORT |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            a, b = d[f"{n}/1"], d[f"{n}/10"]
            lines.append(f"| {n} | {a['rollout']} | " + " | ".join(
                f"{v['eager']:.0f} | {v['torchscript']:.0f} | {v['onnx']:.0f} | {v['eager'] / v['onnx']:.1f}×" for v in (a, b)) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), help="sections to run (default: all)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check that the script runs")
    ap.add_argument("--backbones", nargs="+", choices=BACKBONES, help="fastpath section: these backbones only (default: all)")
    ap.add_argument("--variants", nargs="+", choices=list(FAST_VARIANTS)[1:],
                    help="fastpath section: these variants besides fp32 (default: all; bf16 is slow where it is emulated)")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for latest.json and latest.md")
    ap.add_argument("--deploy-backbones", nargs="+", choices=BACKBONES, help="backbones of the deploy section (default: all)")
    args = ap.parse_args()
    if args.deploy_backbones:
        DEPLOY_BACKBONES[:] = args.deploy_backbones
    sys.path.insert(0, str(HERE))
    if args.threads:
        torch.set_num_threads(args.threads)
    res: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "quick": args.quick}
    for name in args.only or list(SECTIONS):
        print(f"[bench] {name}", flush=True)
        res[name] = SECTIONS[name](args.quick, args.backbones, args.variants) if name == "fastpath" else SECTIONS[name](args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (args.out / "latest.md").write_text(md + "\n")
    print(md)
    _ = resource  # used in the memory child


if __name__ == "__main__":
    main()

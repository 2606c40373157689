#!/usr/bin/env python
"""Does the target return steer a Decision model at the start pose? Its first action at a reset state for
several targets R, at every kept checkpoint of a run (``--keep-checkpoints``): the mean |action| per target and
the spread over targets (the per-joint std across R, averaged over joints). A policy whose first action hardly
moves with R acts the same whatever it is asked for at the start; on halfcheetah-medium-replay that is a cheetah
that settles into a pose and stands still (README, Results).

    python scripts/first_action_probe.py RUN [RUN ...] [--targets 0 1000 2000 4353 6000 12000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories with checkpoints/step_<N>.pt")
    ap.add_argument("--targets", nargs="+", type=float, default=[0, 1000, 2000, 4353, 6000, 12000])
    ap.add_argument("--seed", type=int, default=0, help="reset seed of the start state")
    args = ap.parse_args(argv)
    import torch

    from seqrl.agents.checkpoint import load_checkpoint
    from seqrl.agents.policy import SequencePolicy
    from seqrl.agents.scoring import env_maker

    torch.set_num_threads(1)
    for run in args.runs:
        ckpts = sorted((run / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
        if not ckpts:
            print(f"error: {run} has no checkpoints/step_<N>.pt (train with --keep-checkpoints)", file=sys.stderr)
            return 2
        print(f"{run.name}: first action at reset seed {args.seed}, R = {', '.join(f'{t:g}' for t in args.targets)}")
        obs = None
        for ckpt in ckpts:
            bundle, _ = load_checkpoint(ckpt)
            if bundle.config.get("agent") == "bc":
                print(f"error: {run} is a behaviour-cloning run: it takes no target", file=sys.stderr)
                return 2
            if obs is None:
                env = env_maker(bundle.dataset, bundle.eval_env)()
                obs, _ = env.reset(seed=args.seed)
                env.close()
            actions = []
            for target in args.targets:
                policy = SequencePolicy(bundle.model, bundle.obs_mean, bundle.obs_std, bundle.rtg_scale, "window")
                policy.reset(np.array([target]))
                actions.append(policy.act(obs[None])[0])
            a = np.array(actions)  # (targets, act_dim)
            print(f"  {ckpt.stem.split('_')[1]:>6} updates: mean |a| " + " ".join(f"{v:.2f}" for v in np.abs(a).mean(1))
                  + f"; spread over R {a.std(0).mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

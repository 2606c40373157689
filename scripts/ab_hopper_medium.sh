#!/usr/bin/env bash
# Issue 12's A/B on hopper-medium (CPU protocol): baseline vs EMA vs data-derived targets, transformer and
# mingru, seeds 0 1 2, seed-major (each finished seed is a complete comparison). Re-running skips finished
# runs and resumes unfinished ones (seqrl.grid). Runs go to $RUNS_ROOT (default ../runs/ab: outside the
# work tree, so they outlive a fresh checkout). Then: python -m seqrl.results $RUNS_ROOT --out results/ab
set -euo pipefail
cd "$(dirname "$0")/.."
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/data/minari}
RUNS_ROOT=${RUNS_ROOT:-../runs/ab}
for s in 0 1 2; do
  .venv/bin/python -m seqrl.grid --configs configs/cpu/hopper-medium.yaml configs/ab/hopper-medium-ema.yaml \
    configs/ab/hopper-medium-data-targets.yaml --backbones transformer mingru --seeds "$s" --jobs 2 --runs-root "$RUNS_ROOT"
done

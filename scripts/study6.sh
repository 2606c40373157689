#!/usr/bin/env bash
# Issue 12's study: the six local datasets x {BC, transformer, mingru} x seeds 0 1 2 (mingru evaluated in both
# rollout modes) and hopper-medium x every other backbone, seed by seed, into $RUNS_ROOT (default records/study, in the work
# tree: records/.gitignore keeps weights and TensorBoard files out of git, so each finished run's config,
# evaluations and log can be committed and survive the machine). Resumable: re-running skips finished runs
# and resumes unfinished ones (seqrl.grid), so it can span several sittings. The recipe is the CPU protocol's
# (configs/cpu/<task>.yaml: since issue 12's A/B, no timestep embedding; its runs are labelled +no-time). Extra training flags for every Decision-model run go in $RECIPE
# (e.g. "--ema-decay 0.999"); they are part of the run labels. Every Decision-model run keeps each
# evaluation's policy (--keep-checkpoints, ~3 MB each) for later re-evaluation. $UNTIL (HH:MM or +MINUTES, given
# to every grid command as --until) starts only the runs expected to finish by then, e.g. before a sitting ends:
# runs left out are started by the next invocation. Mamba goes first among the other backbones: on one thread it takes
# about 75 min (1.6 updates/s with a run beside it), and until one has finished --until estimates it from other backbones'
# runs (about 30 min): start it early in a sitting. Then:
#   python -m seqrl.results $RUNS_ROOT --finished --out results/study
RUNS_ROOT=${RUNS_ROOT:-records/study}
source "$(dirname "$0")/grid_lib.sh"
RECIPE=${RECIPE:-}
for s in 0 1 2; do  # seed-major: each finished seed is a complete table
  grid --configs $(configs bc- $SIX) --seeds "$s" -- --threads 1
  grid --configs $(configs "" $SIX) --backbones transformer --seeds "$s" -- --keep-checkpoints $RECIPE
  grid --configs $(configs "" $SIX) --backbones mingru --seeds "$s" \
    -- --rollout window recurrent --keep-checkpoints $RECIPE
  grid --configs configs/cpu/hopper-medium.yaml --backbones mamba urlstm s4d minlstm gru lstm --seeds "$s" -- --keep-checkpoints $RECIPE
done

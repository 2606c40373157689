#!/usr/bin/env bash
# Issue 12's A/B of fused tokens asked for the data's best return (the rule is in the README, "Next A/B"):
# arm B = --tokens fused --targets-from-data for the Transformer and minGRU (both rollout modes) on the six
# local datasets, seeds 0 1 2, into $RUNS_ROOT (default records/ab_fused_data); arm A = the study's runs of the
# same seeds (records/study, scripts/study6.sh). Resumable like the study; $UNTIL as there. Then:
#   python -m seqrl.results records/study records/ab_fused_data --finished --out results/ab_fused_data
RUNS_ROOT=${RUNS_ROOT:-records/ab_fused_data}
source "$(dirname "$0")/grid_lib.sh"
B="--tokens fused --targets-from-data --keep-checkpoints"
for s in 0 1 2; do  # seed-major, as the study
  grid --configs $(configs "" $SIX) --backbones transformer --seeds "$s" -- $B
  grid --configs $(configs "" $SIX) --backbones mingru --seeds "$s" -- --rollout window recurrent $B
done

#!/usr/bin/env bash
# Issue 12's A/B of fused tokens asked for the data's best return (the rule is in the README, "Next A/B"):
# arm B = --tokens fused --targets-from-data for the Transformer and minGRU (both rollout modes) on the six
# local datasets, seeds 0 1 2, into $RUNS_ROOT (default records/ab_fused_data); arm A = the study's runs of the
# same seeds (records/study, scripts/study6.sh). Resumable like the study; $UNTIL as there. Then:
#   python -m seqrl.results records/study records/ab_fused_data --finished --out results/ab_fused_data
set -euo pipefail
cd "$(dirname "$0")/.."
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/data/minari}
RUNS_ROOT=${RUNS_ROOT:-records/ab_fused_data}
PY=.venv/bin/python
T="hopper-medium hopper-medium-replay halfcheetah-medium halfcheetah-medium-replay walker2d-medium walker2d-medium-replay"
UNTIL=${UNTIL:-}
B="--tokens fused --targets-from-data --keep-checkpoints"
grid() { $PY -m seqrl.grid --jobs 2 --runs-root "$RUNS_ROOT" ${UNTIL:+--until "$UNTIL"} "$@"; }
for s in 0 1 2; do  # seed-major, as the study
  grid --configs $(for t in $T; do echo configs/cpu/$t.yaml; done) --backbones transformer --seeds "$s" -- $B
  grid --configs $(for t in $T; do echo configs/cpu/$t.yaml; done) --backbones mingru --seeds "$s" -- --rollout window recurrent $B
done

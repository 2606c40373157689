#!/usr/bin/env bash
# Issue 12's A/B of rotary positions in the Transformer's attention (the rule is in the README, "Transformer
# positions"): arm B = --transformer.pos rope over the CPU protocol, the Transformer on the six local datasets,
# seeds 0 1 2, into $RUNS_ROOT (default records/ab_rope); arm A = the study's Transformer runs of the same seeds
# (records/study). walker2d-medium-replay first (the cell short of BC), then the rest seed by seed. Resumable
# like the study; $UNTIL as there. Then:
#   python -m seqrl.results records/study records/ab_rope --finished --out results/ab_rope
set -euo pipefail
cd "$(dirname "$0")/.."
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/data/minari}
RUNS_ROOT=${RUNS_ROOT:-records/ab_rope}
PY=.venv/bin/python
REST="hopper-medium-replay hopper-medium halfcheetah-medium halfcheetah-medium-replay walker2d-medium"
UNTIL=${UNTIL:-}
JOBS=${JOBS:-2}
B="--transformer.pos rope --keep-checkpoints"
grid() { $PY -m seqrl.grid --jobs "$JOBS" --runs-root "$RUNS_ROOT" ${UNTIL:+--until "$UNTIL"} --backbones transformer "$@"; }
grid --configs configs/cpu/walker2d-medium-replay.yaml --seeds 0 1 2 -- $B
for s in 0 1 2; do
  grid --configs $(for t in $REST; do echo configs/cpu/$t.yaml; done) --seeds "$s" -- $B
done

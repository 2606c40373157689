# Sourced by the study and A/B scripts (study6.sh, ab_fused_data.sh, ab_rope.sh) after they set RUNS_ROOT:
# from the repo root, with the local Minari datasets and the venv's python ($PY);
#   SIX                 the six local datasets, in the study's order
#   configs PREFIX T..  their CPU-protocol config files (PREFIX "bc-" for BC's, "" for the Decision model's)
#   grid ARGS..         seqrl.grid into $RUNS_ROOT, $JOBS (default 2) processes at a time, --until $UNTIL if set
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/data/minari}
PY=${PY:-.venv/bin/python}
SIX="hopper-medium hopper-medium-replay halfcheetah-medium halfcheetah-medium-replay walker2d-medium walker2d-medium-replay"
UNTIL=${UNTIL:-}
JOBS=${JOBS:-2}
configs() { local prefix=$1; shift; for t in "$@"; do echo "configs/cpu/$prefix$t.yaml"; done; }
grid() { $PY -m seqrl.grid --jobs "$JOBS" --runs-root "$RUNS_ROOT" ${UNTIL:+--until "$UNTIL"} "$@"; }

#!/usr/bin/env bash
# Issue 12's A/B on hopper-medium (CPU protocol), transformer and mingru, seeds 0 1 2, seed-major (each
# finished seed is a complete comparison). Runs go to $RUNS_ROOT (default records/ab: in the work tree, where
# each finished run's config, evaluations and log can be committed; records/.gitignore keeps the weights out).
# Re-running skips finished runs and resumes unfinished ones (seqrl.grid).
#
# The arms are flags over configs/cpu/hopper-medium.yaml, so that they stay what was measured whatever that
# protocol says today (the A/B's outcome, dropping the timestep embedding, is now in it):
#   baseline     --time-embedding                     DT's learned timestep embedding (the protocol before)
#   EMA          --time-embedding --ema-decay 0.999   an EMA of the weights, evaluated and checkpointed
#   no-time      --no-time-embedding                  no timestep embedding (the protocol now)
#   data targets the baseline's last checkpoint evaluated with the targets --targets-from-data would use (the
#                best and the median episode return of the dataset, computed here from the data), 10 episodes
#                each, into <run>/data_targets_eval.json (training, and so last.pt, are the baseline's; seed 0
#                also trained the arm in full, configs/ab/hopper-medium-data-targets.yaml --time-embedding, to check that
#                shortcut).
# Every arm passes --transformer.pos none: the A/B measured the Transformer without positions, and the protocol's
# configs have given it rotary positions since (backbone_defaults), which would otherwise change the arms.
# The no-time arm is the protocol's own runs without positions, made into records/study (the study's
# transformer+no-time and mingru+no-time; a grid pointed there skips them when they are finished).
# First measured with seqrl at 373e4ac (baseline, EMA) and 29bc97f (no-time), on a machine whose run
# directories were lost; re-run into records/ab from 2026-12-03.
# Then: python -m seqrl.results $RUNS_ROOT records/study/hopper__medium__{transformer,mingru}+no-time__[012]__* --finished \
#   --out results/ab --readme README.md --block ab
set -euo pipefail
cd "$(dirname "$0")/.."
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/data/minari}
RUNS_ROOT=${RUNS_ROOT:-records/ab}
STUDY_ROOT=${STUDY_ROOT:-records/study}  # where the no-time arm (the protocol without positions) lives
UNTIL=${UNTIL:-}  # HH:MM or +MINUTES: each grid command's --until (runs not expected to finish by then wait)
PY=.venv/bin/python
TARGETS=$($PY - <<'EOF'
from seqrl.training.config import load_yaml_config
from seqrl.datasets import resolve_dataset
from seqrl.datasets.d4rl import default_cache_dir
from pathlib import Path
cfg = load_yaml_config(Path("configs/ab/hopper-medium-data-targets.yaml"))
data = resolve_dataset(cfg.dataset, cfg.env, default_cache_dir(), allow_download=False).data
print(" ".join(f"{t:.1f}" for t in data.return_quantiles(cfg.data_target_quantiles)))
EOF
)
echo "[ab] data targets (quantiles 1.0, 0.5 of the episode returns): $TARGETS"
for s in 0 1 2; do
  for arm in "--time-embedding" "--time-embedding --ema-decay 0.999" "--no-time-embedding"; do
    root=$RUNS_ROOT; [ "$arm" = "--no-time-embedding" ] && root=$STUDY_ROOT
    # shellcheck disable=SC2086  # the arm's flags are words
    $PY -m seqrl.grid --configs configs/cpu/hopper-medium.yaml --backbones transformer mingru --seeds "$s" --jobs 2 \
      --runs-root "$root" ${UNTIL:+--until "$UNTIL"} -- $arm --transformer.pos none
  done
  for run in "$RUNS_ROOT"/hopper__medium__transformer__"$s"__* "$RUNS_ROOT"/hopper__medium__mingru__"$s"__*; do
    [ -f "$run/done.json" ] && [ ! -f "$run/data_targets_eval.json" ] || continue
    OMP_NUM_THREADS=1 $PY evaluate.py "$run" --targets $TARGETS --episodes 10 --json "$run/data_targets_eval.json.tmp" \
      && mv "$run/data_targets_eval.json.tmp" "$run/data_targets_eval.json"
  done
done

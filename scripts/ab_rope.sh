#!/usr/bin/env bash
# Issue 12's A/B of rotary positions in the Transformer's attention (the rule is in the README, "Transformer
# positions"): arm B = --transformer.pos rope over the CPU protocol, the Transformer on the six local datasets,
# seeds 0 1 2, into $RUNS_ROOT (records/ab_rope while it ran; records/study since it was kept); arm A = the study's Transformer runs of the same seeds
# (records/study), made before the protocol took rope, and by this script's last loop since (--transformer.pos none: the
# protocol's configs now give the Transformer rope, so arm A says none; a finished run is skipped). walker2d-medium-replay first (the cell short of BC), then the rest seed by seed. Resumable
# like the study; $UNTIL as there. Then:
#   python -m seqrl.results records/study --finished --out results/study   (both arms: +rope and not)
RUNS_ROOT=${RUNS_ROOT:-records/study}  # decided: its runs moved into the study (README, "Transformer positions")
source "$(dirname "$0")/grid_lib.sh"
B="--transformer.pos rope --keep-checkpoints"
A="--transformer.pos none --keep-checkpoints"
grid --configs configs/cpu/walker2d-medium-replay.yaml --backbones transformer --seeds 0 1 2 -- $B
for s in 0 1 2; do
  grid --configs $(configs "" ${SIX/walker2d-medium-replay/}) --backbones transformer --seeds "$s" -- $B
done
for s in 0 1 2; do
  grid --configs $(configs "" $SIX) --backbones transformer --seeds "$s" -- $A
done

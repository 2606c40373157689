"""Train an agent (the Decision model over a backbone, or the behaviour-cloning baseline) offline on D4RL /
Minari locomotion data.

    python train_offline.py --config configs/cpu/hopper-medium.yaml --backbone mingru
    python train_offline.py --env hopper --dataset medium --backbone transformer --steps 5000
    python train_offline.py --config configs/cpu/bc-hopper-medium.yaml          # BC: --agent bc

Any config field is a flag (``--help`` lists them). Writes a run directory with
config.yaml, TensorBoard events, evals.jsonl, checkpoints (last.pt, best.pt) and, once finished, done.json.
"""

from __future__ import annotations

import sys

from seqrl.core.errors import SeqRLError
from seqrl.training.distributed import shutdown
from seqrl.training.run import train

from .args import parse_train_args


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_train_args(argv, description=__doc__)
        train(cfg)
        shutdown()
    except SeqRLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint in the run directory is intact.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

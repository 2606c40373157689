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

from seqrl.core.command import run_command
from seqrl.training.distributed import shutdown
from seqrl.training.run import train

from .args import parse_train_args


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        train(parse_train_args(argv, description=__doc__))
        shutdown()
        return 0

    # a signal during training is said by the run (where it stopped, what is kept); before it, nothing is written
    return run_command(body, lambda stop: f"stopped by {stop.name} before the run started; nothing was written.")


if __name__ == "__main__":
    sys.exit(main())

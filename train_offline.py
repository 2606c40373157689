#!/usr/bin/env python
"""``python train_offline.py --help`` in a checkout; ``seqrl-train`` once installed. The program is ``seqrl/cli/train.py``."""

import sys

from seqrl.core.command import loading

if __name__ == "__main__":
    with loading("train_offline.py"):  # a signal while torch and MuJoCo load: one line, not an import's traceback
        from seqrl.cli.train import main
    sys.exit(main())

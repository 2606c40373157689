#!/usr/bin/env python
"""``python train_offline.py --help`` in a checkout; ``seqrl-train`` once installed. The program is ``seqrl/cli/train.py``."""

import sys

if __name__ == "__main__":
    from seqrl.cli.train import main  # a signal while it loads: one line (seqrl.core.command.guard_loading)

    sys.exit(main())

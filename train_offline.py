#!/usr/bin/env python
"""``python train_offline.py --help`` in a checkout; ``seqrl-train`` once installed. The program is ``seqrl/cli/train.py``."""

import sys

from seqrl.cli.train import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""``python evaluate.py --help`` in a checkout; ``seqrl-evaluate`` once installed. The program is ``seqrl/cli/evaluate.py``."""

import sys

from seqrl.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""``python evaluate.py --help`` in a checkout; ``seqrl-evaluate`` once installed. The program is ``seqrl/cli/evaluate.py``."""

import sys

from seqrl.core.command import loading

if __name__ == "__main__":
    with loading("evaluate.py"):  # a signal while torch and MuJoCo load: one line, not an import's traceback
        from seqrl.cli.evaluate import main
    sys.exit(main())

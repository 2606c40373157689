#!/usr/bin/env python
"""``python evaluate.py --help`` in a checkout; ``seqrl-evaluate`` once installed. The program is ``seqrl/cli/evaluate.py``."""

import sys

if __name__ == "__main__":
    from seqrl.cli.evaluate import main  # a signal while it loads: one line (seqrl.core.command.guard_loading)

    sys.exit(main())

#!/usr/bin/env python
"""``python export.py --help`` in a checkout; ``seqrl-export`` once installed. The program is ``seqrl/cli/export.py``."""

import sys

if __name__ == "__main__":
    from seqrl.cli.export import main  # a signal while it loads: one line (seqrl.core.command.guard_loading)

    sys.exit(main())

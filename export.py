#!/usr/bin/env python
"""``python export.py --help`` in a checkout; ``seqrl-export`` once installed. The program is ``seqrl/cli/export.py``."""

import sys

from seqrl.cli.export import main

if __name__ == "__main__":
    sys.exit(main())

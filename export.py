#!/usr/bin/env python
"""``python export.py --help`` in a checkout; ``seqrl-export`` once installed. The program is ``seqrl/cli/export.py``."""

import sys

from seqrl.core.command import loading

if __name__ == "__main__":
    with loading("export.py"):  # a signal while torch and MuJoCo load: one line, not an import's traceback
        from seqrl.cli.export import main
    sys.exit(main())

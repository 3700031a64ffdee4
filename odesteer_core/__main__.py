"""``python -m odesteer_core``: see ``cli/commands.py``."""

import sys

from odesteer_core.cli import main

if __name__ == "__main__":
    sys.exit(main())

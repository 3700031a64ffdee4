"""``python -m odesteer_core``: see ``cli/commands.py``."""

import sys

from odesteer_core.cli.commands import main

sys.exit(main())

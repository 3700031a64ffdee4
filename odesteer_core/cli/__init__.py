"""The command line: ``python -m odesteer_core {concepts,fit,compare,smoke,eval} ...``.

Cheap to import: the heavy libraries load inside the command that needs them.
"""

from odesteer_core.cli.commands import main

__all__ = ["main"]

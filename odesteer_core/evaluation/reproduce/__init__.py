"""``reproduce``: the paper's tables with one resumable command that scales out.

``config.py`` (what runs), ``tasks.py`` and ``prepare.py`` (the protocol per task), ``data.py``
(Hub or local data), ``decode.py`` (seeded steered sampling), ``cells.py`` (one fold's work),
``judges.py`` (scores), ``store.py`` (the output folder), ``distributed.py`` (processes),
``report.py`` (tables) and ``runner.py`` (the whole run).
"""

from odesteer_core.evaluation.reproduce.config import (
    ALL_METHODS,
    TASK_NAMES,
    DataFiles,
    JudgeConfig,
    RunConfig,
)
from odesteer_core.evaluation.reproduce.runner import (
    ModelOptions,
    Reproduction,
    reproduce,
    validate,
)

__all__ = [
    "ALL_METHODS",
    "TASK_NAMES",
    "DataFiles",
    "JudgeConfig",
    "ModelOptions",
    "Reproduction",
    "RunConfig",
    "reproduce",
    "validate",
]

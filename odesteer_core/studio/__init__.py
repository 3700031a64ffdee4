"""The app's backend, free of Gradio: shared models and fitted concepts, streaming, deployment.

``Studio`` caches models and fitted concepts for every user of one app; ``stream_in_thread`` runs
a comparison on one thread of its own.
"""

from odesteer_core.studio.backend import (
    CUSTOM,
    DEFAULT_MODEL,
    Studio,
    allowed_models,
    concept_choices,
    is_public,
)
from odesteer_core.studio.streaming import stream_in_thread

__all__ = [
    "CUSTOM",
    "DEFAULT_MODEL",
    "Studio",
    "allowed_models",
    "concept_choices",
    "is_public",
    "stream_in_thread",
]

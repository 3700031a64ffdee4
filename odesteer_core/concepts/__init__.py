"""Concepts: what to steer towards, as positive and negative examples.

A ``Concept`` comes from a built-in name (JSONL files shipped in ``builtin/``), TruthfulQA, a
user's JSONL/CSV/TXT file, or pasted texts; ``format_concept`` renders its examples as the texts
whose activations are recorded.
"""

from odesteer_core.concepts.concept import (
    Concept,
    Example,
    concept_from_texts,
    format_concept,
    format_example,
)
from odesteer_core.concepts.files import load_concept_file
from odesteer_core.concepts.sources import list_concepts, load_concept
from odesteer_core.concepts.truthfulqa import (
    load_truthfulqa_questions,
    truthfulqa_split,
    truthfulqa_subset,
)

__all__ = [
    "Concept",
    "Example",
    "concept_from_texts",
    "format_concept",
    "format_example",
    "list_concepts",
    "load_concept",
    "load_concept_file",
    "load_truthfulqa_questions",
    "truthfulqa_split",
    "truthfulqa_subset",
]

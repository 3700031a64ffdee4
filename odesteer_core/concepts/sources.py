"""Where concepts come from: the built-ins, TruthfulQA, and users' files.

Built-in concepts live as JSONL files in the ``builtin`` folder next to this module (shipped with
the package); ``load_concept`` takes a built-in name, ``"truthfulqa"`` (``truthfulqa.py``) or a
file path (``files.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odesteer_core.concepts.concept import Concept
from odesteer_core.concepts.files import CONCEPT_FILE_SUFFIXES, load_concept_file
from odesteer_core.concepts.truthfulqa import (
    TRUTHFULQA_DESCRIPTION,
    TRUTHFULQA_N_PROMPTS,
    load_truthfulqa_questions,
    truthfulqa_concept,
)

__all__ = [
    "BUILTIN_CONCEPTS_DIR",
    "concept_names",
    "list_concepts",
    "load_concept",
    "load_named_concept",
]

BUILTIN_CONCEPTS_DIR: Path = Path(__file__).resolve().parent / "builtin"
_TRUTHFULQA = "truthfulqa"


def _builtin_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_CONCEPTS_DIR.glob("*.jsonl"))}


def list_concepts() -> list[dict[str, Any]]:
    """Describe the built-in concepts and TruthfulQA.

    Returns:
        One dict per concept with keys ``name``, ``description``, ``n_positive``, ``n_negative``
        and ``n_prompts``. TruthfulQA's counts are ``None`` (it is loaded on demand).
    """
    rows = []
    for c in map(load_concept_file, _builtin_paths().values()):
        rows.append(
            {
                "name": c.name,
                "description": c.description,
                "n_positive": len(c.positive),
                "n_negative": len(c.negative),
                "n_prompts": len(c.prompts),
            }
        )
    rows.append(
        {
            "name": _TRUTHFULQA,
            "description": TRUTHFULQA_DESCRIPTION,
            "n_positive": None,  # TruthfulQA is loaded on demand (Hub or local CSV)
            "n_negative": None,
            "n_prompts": TRUTHFULQA_N_PROMPTS,
        }
    )
    return rows


def concept_names() -> list[str]:
    """Names ``load_named_concept`` accepts: the built-ins and ``truthfulqa``."""
    return [*_builtin_paths(), _TRUTHFULQA]


def load_named_concept(
    name: object,
    *,
    truthfulqa_csv: str | Path | None = None,
    split: str = "all",
    fold: int = 0,
    seed: int = 0,
) -> Concept:
    """A built-in concept or ``"truthfulqa"`` by name; never reads a path the caller names.

    The web app's only way to a concept by name: any other string, whatever exists on disk, is
    "unknown concept", the same answer every time. Arguments as in ``load_concept``.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    builtins = _builtin_paths()
    if key in builtins:
        return load_concept_file(builtins[key])
    if key == _TRUTHFULQA:
        questions = load_truthfulqa_questions(truthfulqa_csv)
        return truthfulqa_concept(questions, split=split, fold=fold, seed=seed)
    shown = repr(name[:40] + "…" if len(name) > 40 else name) if isinstance(name, str) else "that"
    raise ValueError(f"Unknown concept {shown}; choose one of {', '.join(concept_names())}.")


def load_concept(
    spec: str | Path,
    *,
    truthfulqa_csv: str | Path | None = None,
    split: str = "all",
    fold: int = 0,
    seed: int = 0,
) -> Concept:
    """Load a concept by built-in name, ``"truthfulqa"``, or path to a custom file.

    Args:
        spec: a built-in name (see ``list_concepts``), ``"truthfulqa"``, or a path to a
            ``.jsonl``/``.csv``/``.txt`` file (see ``load_concept_file``).
        truthfulqa_csv: local TruthfulQA CSV; without it the Hugging Face Hub copy is tried.
        split: ``"train"``, ``"test"`` or ``"all"`` questions of TruthfulQA's 2-fold split.
        fold: which fold is the test half (0 or 1).
        seed: seed of the question shuffle.

    ``split``, ``fold`` and ``seed`` apply to TruthfulQA only and are ignored otherwise.

    Raises:
        TypeError: if ``spec`` is not a string or path.
        ValueError: for an unknown name, an unreadable or invalid file, or bad split arguments.
    """
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"spec must be a concept name or file path, got {type(spec).__name__}.")
    key = str(spec).strip()
    if key.lower() in concept_names():
        return load_named_concept(
            key, truthfulqa_csv=truthfulqa_csv, split=split, fold=fold, seed=seed
        )
    path = Path(key).expanduser()
    if path.suffix.lower() in CONCEPT_FILE_SUFFIXES or path.exists():
        return load_concept_file(path)
    valid = ", ".join(concept_names())
    raise ValueError(
        f"Unknown concept {key!r}; choose one of {valid}, or give the path of a "
        f"{'/'.join(CONCEPT_FILE_SUFFIXES)} file."
    )

"""TruthfulQA as a concept: correct vs incorrect reference answers, split by question.

Questions come from a local CSV in the original layout (``Type, Category, Question, Best Answer,
Correct Answers, Incorrect Answers, Source``; answers in a cell separated by ``;``) or, when none is
given, from the Hugging Face Hub (``truthfulqa/truthful_qa``, config ``generation``). The paper
uses 2-fold cross-validation by question: fit on one half, evaluate on the other. The question
objects stay public because the evaluation harness needs them.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odesteer_core.concepts.concept import Concept, Example, build_concept
from odesteer_core.concepts.files import read_text_file

__all__ = [
    "TRUTHFULQA_N_FOLDS",
    "TruthfulQAQuestion",
    "load_truthfulqa_questions",
    "truthfulqa_concept",
    "truthfulqa_split",
    "truthfulqa_subset",
]

TRUTHFULQA_N_FOLDS = 2
TRUTHFULQA_N_PROMPTS = 10
TRUTHFULQA_DESCRIPTION = (
    "Truthful vs false reference answers to TruthfulQA questions (Lin, Hilton and Evans, 2021)."
)
TRUTHFULQA_SPLITS = ("train", "test", "all")
HF_DATASET = ("truthfulqa/truthful_qa", "generation")
_REQUIRED_COLUMNS = ("Question", "Best Answer", "Correct Answers", "Incorrect Answers")


@dataclass(frozen=True)
class TruthfulQAQuestion:
    """One TruthfulQA question with its reference answers (deduplicated, order kept)."""

    question: str
    best_answer: str
    correct: tuple[str, ...]  # best answer first, then the other correct answers
    incorrect: tuple[str, ...]
    category: str = ""


def _answers(cell: str) -> list[str]:
    # The CSV separates answers with "; " and a few cells end with a stray ";".
    return [a.strip() for a in cell.split(";") if a.strip()]


def _make_question(
    question: str, best: str, correct: list[str], incorrect: list[str], category: str, where: str
) -> TruthfulQAQuestion:
    if not question.strip():
        raise ValueError(f"TruthfulQA {where}: empty 'Question'; fix or drop the row.")
    correct = list(dict.fromkeys(a.strip() for a in [best, *correct] if a.strip()))
    incorrect = list(dict.fromkeys(a.strip() for a in incorrect if a.strip()))
    if not correct:
        raise ValueError(
            f"TruthfulQA {where}: empty 'Best Answer' and 'Correct Answers'; "
            "each question needs at least one correct answer."
        )
    if not incorrect:
        raise ValueError(
            f"TruthfulQA {where}: empty 'Incorrect Answers'; "
            "each question needs at least one incorrect answer."
        )
    return TruthfulQAQuestion(
        question=question.strip(),
        best_answer=best.strip() or correct[0],
        correct=tuple(correct),
        incorrect=tuple(incorrect),
        category=category.strip(),
    )


def _from_csv(path: str | Path) -> list[TruthfulQAQuestion]:
    reader = csv.DictReader(io.StringIO(read_text_file(path)))
    header = [(c or "").strip() for c in reader.fieldnames or []]
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"TruthfulQA CSV {str(path)!r} lacks column(s) {missing}; expected the original "
            f"layout with {list(_REQUIRED_COLUMNS)} (found {header})."
        )
    questions = []
    for i, raw in enumerate(reader, start=1):
        row = {(k or "").strip(): v or "" for k, v in raw.items() if k is not None}
        where = f"row {i} (line {reader.line_num})"
        questions.append(
            _make_question(
                row["Question"],
                row["Best Answer"],
                _answers(row["Correct Answers"]),
                _answers(row["Incorrect Answers"]),
                row.get("Category", ""),
                where,
            )
        )
    if not questions:
        raise ValueError(f"TruthfulQA CSV {str(path)!r} has a header but no rows.")
    return questions


def _from_hub() -> list[TruthfulQAQuestion]:
    try:
        import datasets  # heavy, and only needed without a local CSV

        rows: Any = datasets.load_dataset(*HF_DATASET, split="validation")
    except Exception as exc:
        raise ValueError(
            f"Could not load TruthfulQA from the Hugging Face Hub ({type(exc).__name__}: {exc}); "
            "pass a local copy of TruthfulQA.csv with truthfulqa_csv=PATH "
            "(CLI: --truthfulqa-csv PATH)."
        ) from exc
    return [
        _make_question(
            r["question"],
            r["best_answer"],
            list(r["correct_answers"]),
            list(r["incorrect_answers"]),
            r.get("category") or "",
            f"row {i}",
        )
        for i, r in enumerate(rows, start=1)
    ]


def load_truthfulqa_questions(csv: str | Path | None = None) -> list[TruthfulQAQuestion]:
    """Load all TruthfulQA questions, from a local CSV or else the Hugging Face Hub.

    Args:
        csv: path of a CSV in the original TruthfulQA layout; None tries the Hub.

    Raises:
        ValueError: if the CSV is unreadable, lacks a column or has an empty answer cell (the row
            is named), or if the Hub is unreachable and no CSV was given.
    """
    return _from_hub() if csv is None else _from_csv(csv)


def truthfulqa_split(
    questions: list[TruthfulQAQuestion], *, n_folds: int = TRUTHFULQA_N_FOLDS, seed: int = 0
) -> list[list[int]]:
    """Split question indices into ``n_folds`` near-equal folds after a seeded shuffle.

    Returns:
        ``n_folds`` sorted lists of indices into ``questions``; together they cover every index
        once, and earlier folds are one larger when the count does not divide evenly.
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}.")
    if len(questions) < n_folds:
        raise ValueError(f"Cannot split {len(questions)} questions into {n_folds} folds.")
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    size, extra = divmod(len(order), n_folds)
    folds, start = [], 0
    for k in range(n_folds):
        stop = start + size + (k < extra)
        folds.append(sorted(order[start:stop]))
        start = stop
    return folds


def truthfulqa_subset(
    questions: list[TruthfulQAQuestion],
    split: str = "all",
    *,
    fold: int = 0,
    seed: int = 0,
    n_folds: int = TRUTHFULQA_N_FOLDS,
) -> list[TruthfulQAQuestion]:
    """Questions of a split: ``"test"`` is fold ``fold``, ``"train"`` the rest, ``"all"`` all.

    Raises:
        ValueError: for an unknown split or a fold outside ``0..n_folds-1``.
    """
    if split not in TRUTHFULQA_SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {', '.join(TRUTHFULQA_SPLITS)}.")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < n_folds:
        raise ValueError(f"fold must be an integer in 0..{n_folds - 1}, got {fold!r}.")
    if split == "all":
        return list(questions)
    folds = truthfulqa_split(questions, n_folds=n_folds, seed=seed)
    test = set(folds[fold])
    keep = test if split == "test" else set(range(len(questions))) - test
    return [q for i, q in enumerate(questions) if i in keep]


def truthfulqa_concept(
    questions: list[TruthfulQAQuestion], *, split: str = "all", fold: int = 0, seed: int = 0
) -> Concept:
    """Build the TruthfulQA concept: correct answers positive, incorrect answers negative.

    Each answer becomes ``Example(question, answer)``. An answer listed as both correct and
    incorrect for the same question (e.g. "Unknown") is dropped from both sides. Demo prompts are
    the first held-out (fold ``fold``) questions, so they are unseen when ``split="train"``.
    """
    chosen = truthfulqa_subset(questions, split, fold=fold, seed=seed)
    held_out = truthfulqa_subset(questions, "test", fold=fold, seed=seed)
    positive, negative = [], []
    for q in chosen:
        both = set(q.correct) & set(q.incorrect)
        positive += [Example(q.question, a) for a in q.correct if a not in both]
        negative += [Example(q.question, a) for a in q.incorrect if a not in both]
    description = TRUTHFULQA_DESCRIPTION
    if split != "all":
        description += f" {split.capitalize()} half of the 2-fold split (fold {fold}, seed {seed})."
    return build_concept(
        "truthfulqa",
        description,
        positive,
        negative,
        prompts=[q.question for q in held_out[:TRUTHFULQA_N_PROMPTS]],
        positive_label="truthful",
        negative_label="untruthful",
        source=f"TruthfulQA ({split})",
    )

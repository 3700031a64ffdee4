"""Where an evaluation's prompts come from: a task of the paper or a local file, checked once.

``PromptSource`` names the prompts (a task in ``GEN_TASKS`` through ``datasets``, or a small
local JSONL/CSV/TXT file), the concept the steerers fit on and how many prompts to use.
``PromptSource.load`` reads them into a ``PromptSet``: one ``PromptFold`` per fold, each with its
prompts and the concept to fit, plus notices (e.g. when ``limit`` asks for more than there are).
TruthfulQA data with the TruthfulQA concept runs the paper's 2-fold protocol: each fold's questions
are the prompts, and the steerers fit on the other fold's answers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from odesteer_core.concepts.concept import Concept
from odesteer_core.concepts.files import read_text_file
from odesteer_core.concepts.sources import load_concept
from odesteer_core.concepts.truthfulqa import (
    TruthfulQAQuestion,
    load_truthfulqa_questions,
    truthfulqa_concept,
    truthfulqa_split,
)
from odesteer_core.evaluation.specs import SettingError, Sweep

__all__ = [
    "GEN_TASKS",
    "GenTask",
    "PromptFold",
    "PromptSet",
    "PromptSource",
    "two_fold",
    "load_prompts",
]


@dataclass(frozen=True)
class GenTask:
    """A generation task of the paper: where its prompts live on the Hub."""

    dataset: str
    config: str | None
    split: str
    field: str  # column of the prompt (RealToxicityPrompts: a dict with "text")
    max_new_tokens: int  # the paper's setting


GEN_TASKS = {  # the paper's generation tasks; TruthfulQA also reads a local CSV
    "truthfulqa": GenTask("truthfulqa/truthful_qa", "generation", "validation", "question", 50),
    "ultrafeedback": GenTask(
        "HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs", "prompt", 128
    ),
    "realtoxicityprompts": GenTask("allenai/real-toxicity-prompts", None, "train", "prompt", 50),
}
FILE_MAX_NEW_TOKENS = 50  # new tokens per prompt of a local file
_PROMPT_KEYS = ("prompt", "question", "text", "instruction")
_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".txt")
_FILE_HINT = ".jsonl with a 'prompt' field, .csv with a 'prompt' column, or .txt, one per line"


def _prompt_of(record: object, where: str) -> str:
    if isinstance(record, dict):
        lowered = {str(k).strip().lower(): v for k, v in record.items()}
        for key in _PROMPT_KEYS:
            value = lowered.get(key)
            if isinstance(value, dict):  # RealToxicityPrompts: {"prompt": {"text": ...}}
                value = value.get("text")
            if isinstance(value, str) and value.strip():
                return value.strip()
    raise ValueError(
        f"{where}: no non-empty prompt; give each row one of the fields {_PROMPT_KEYS}"
    )


def _from_file(path: str) -> list[str]:
    text, suffix = read_text_file(path), Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        prompts = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    prompts.append(_prompt_of(json.loads(line), f"{path} line {i}"))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path} line {i} is not JSON ({err.msg})") from err
    elif suffix == ".csv":
        rows = csv.DictReader(io.StringIO(text))
        prompts = [_prompt_of(r, f"{path} row {i}") for i, r in enumerate(rows, start=1)]
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{path} holds no prompts; use {_FILE_HINT}")
    return prompts


@contextmanager
def _datasets_bars_like_the_hub(datasets: ModuleType) -> Iterator[None]:
    """``datasets`` shows no bars while the Hub's are off (as the CLI's ``--quiet`` does)."""
    from huggingface_hub.utils import are_progress_bars_disabled

    turn_off = are_progress_bars_disabled() and datasets.is_progress_bar_enabled()
    if turn_off:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            datasets.enable_progress_bars()


def _from_hub(data: str, limit: int | None) -> list[str]:
    task = GEN_TASKS[data]
    split = task.split if limit is None else f"{task.split}[:{limit}]"
    try:
        import datasets  # heavy, and only needed for Hub data

        with _datasets_bars_like_the_hub(datasets):
            rows = datasets.load_dataset(task.dataset, task.config, split=split)
    except Exception as exc:
        raise ValueError(
            f"could not load {data!r} ({task.dataset}) from the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}); pass a local file instead ({_FILE_HINT})"
        ) from exc
    return [_prompt_of({"prompt": r[task.field]}, f"{data} row {i}") for i, r in enumerate(rows)]


def _first(items: list, limit: int | None, what: str, where: str) -> tuple[list, list[str]]:
    """The first ``limit`` items, and a notice when fewer are available than ``limit`` asks."""
    if limit is None or len(items) >= limit:
        return items[:limit], []
    n = len(items)
    return items, [f"limit {limit}: only {n} {what} available ({where} holds {n}); using all {n}"]


def _check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SettingError("limit", f"limit must be a positive int or None, got {limit!r}")


def _prompts(data: str, limit: int | None, truthfulqa_csv: str | None) -> tuple[list, list[str]]:
    """The prompts of ``data`` (a task or a file) and the notices of reading them."""
    if data == "truthfulqa":
        questions, notices = _questions(truthfulqa_csv, limit)
        return [q.question for q in questions], notices
    if data in GEN_TASKS:
        task = GEN_TASKS[data]
        return _first(_from_hub(data, limit), limit, "prompts", f"{task.dataset} {task.split}")
    if Path(data).suffix.lower() in _FILE_SUFFIXES:
        return _first(_from_file(data), limit, "prompts", data)
    raise ValueError(
        f"unknown data {data!r}; use one of {sorted(GEN_TASKS)} or a file ({_FILE_HINT})"
    )


def _questions(
    truthfulqa_csv: str | None, limit: int | None
) -> tuple[list[TruthfulQAQuestion], list[str]]:
    where = "TruthfulQA on the Hub" if truthfulqa_csv is None else str(truthfulqa_csv)
    return _first(load_truthfulqa_questions(truthfulqa_csv), limit, "questions", where)


def load_prompts(
    data: str, *, limit: int | None = None, truthfulqa_csv: str | None = None
) -> list[str]:
    """Prompts of a task in ``GEN_TASKS`` (through ``datasets``) or of a local file.

    Args:
        data: A task name or the path of a .jsonl/.csv/.txt file.
        limit: Keep the first ``limit`` prompts (all of them when there are fewer).
        truthfulqa_csv: Local TruthfulQA CSV for the ``truthfulqa`` task (offline).

    Raises:
        ValueError: unknown task or file type, unreadable data, rows without a prompt.
    """
    _check_limit(limit)
    return _prompts(data, limit, truthfulqa_csv)[0]


def two_fold(
    questions: list[TruthfulQAQuestion], sweep: Sweep
) -> list[tuple[list[int], Concept | None]]:
    """The paper's 2-fold protocol: per fold, the indices of its (test) questions and the
    TruthfulQA concept of the other fold's questions, which its steerers fit on (None when the
    sweep steers nothing). The split and the concepts follow ``sweep.seed``.

    Raises:
        ValueError: too few questions to split, or to fit on half of them.
    """
    folds = []
    for k, test in enumerate(truthfulqa_split(questions, seed=sweep.seed)):
        if not sweep.steered:
            folds.append((test, None))
            continue
        try:
            concept = truthfulqa_concept(questions, split="train", fold=k, seed=sweep.seed)
        except ValueError as err:
            raise ValueError(
                f"{err} Each fold fits on half of the {len(questions)} questions; use more "
                "questions (a larger --limit)."
            ) from err
        folds.append((test, concept))
    return folds


@dataclass(frozen=True)
class PromptFold:
    """One fold's prompts and the concept its steerers fit on."""

    fold: int | None  # TruthfulQA fold whose questions are the prompts; None: no 2-fold protocol
    prompts: tuple[str, ...]
    concept: Concept | None  # None when no method steers


@dataclass(frozen=True)
class PromptSet:
    """The prompts of a ``PromptSource``, read for one ``Sweep`` (see ``PromptSource.load``)."""

    source: PromptSource
    sweep: Sweep  # its seed splits TruthfulQA; its steered methods need a concept
    folds: tuple[PromptFold, ...]
    notices: tuple[str, ...] = ()  # e.g. fewer prompts than the limit asked for

    @property
    def n_prompts(self) -> int:
        return sum(len(f.prompts) for f in self.folds)


@dataclass(frozen=True)
class PromptSource:
    """The prompts of an evaluation and the concept the steerers fit on."""

    data: str = "truthfulqa"  # a task in GEN_TASKS, or a .jsonl/.csv/.txt file of prompts
    concept: str | None = None  # built-in name, "truthfulqa" or a file (None: the TruthfulQA
    # concept with the 2-fold protocol for TruthfulQA data; required for other data)
    truthfulqa_csv: str | None = None  # local TruthfulQA CSV (None: the Hub)
    limit: int | None = None  # use the first `limit` prompts (None: all)

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, str) or not data.strip():
            raise SettingError("data", f"data must be a task name or a file, got {data!r}")
        if data not in GEN_TASKS and Path(data).suffix.lower() not in _FILE_SUFFIXES:
            raise SettingError(
                "data", f"unknown data {data!r}; use one of {sorted(GEN_TASKS)} or a {_FILE_HINT}"
            )
        for name in ("concept", "truthfulqa_csv"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (str, Path)) or not str(value).strip()):
                raise SettingError(name, f"{name} must be a name or path, or None, got {value!r}")
        _check_limit(self.limit)

    @property
    def max_new_tokens(self) -> int:
        """The task's number of new tokens in the paper (``FILE_MAX_NEW_TOKENS`` for a file)."""
        task = GEN_TASKS.get(self.data)
        return FILE_MAX_NEW_TOKENS if task is None else task.max_new_tokens

    def two_fold(self, sweep: Sweep) -> bool:
        """Whether the paper's 2-fold protocol runs: steered TruthfulQA on its own concept."""
        return (
            self.data == "truthfulqa"
            and self.concept in (None, "truthfulqa")
            and bool(sweep.steered)
        )

    def questions(self) -> tuple[list[TruthfulQAQuestion], list[str]]:
        """The first ``limit`` TruthfulQA questions, and a notice when there are fewer."""
        return _questions(self.truthfulqa_csv, self.limit)

    def load(self, sweep: Sweep) -> PromptSet:
        """Read the prompts and the concept(s) the ``sweep``'s steered methods fit on.

        Raises:
            ValueError: unreadable data or concept, rows without a prompt, too few questions for
                the 2-fold protocol, or no concept named for steering on other data.
        """
        if self.two_fold(sweep):
            questions, notices = self.questions()
            folds = tuple(
                PromptFold(k, tuple(questions[i].question for i in test), concept)
                for k, (test, concept) in enumerate(two_fold(questions, sweep))
            )
            return PromptSet(self, sweep, folds, tuple(notices))
        if self.concept is None and sweep.steered:
            raise SettingError(
                "concept", "name the concept the steerers are fitted on (a built-in name or file)"
            )
        prompts, notices = _prompts(self.data, self.limit, self.truthfulqa_csv)
        concept = None
        if sweep.steered:
            concept = load_concept(self.concept, truthfulqa_csv=self.truthfulqa_csv)
        fold = PromptFold(None, tuple(prompts), concept)
        return PromptSet(self, sweep, (fold,), tuple(notices))

"""Concepts: contrastive sets of positive and negative examples that a steerer is fitted on.

A concept is two sides of examples (question/answer pairs or bare texts). Built-in concepts live
as JSONL files in ``assets/concepts``; users may also pass their own JSONL, CSV or text file, or
two lists of strings. Every entry point validates once (blank and duplicate texts dropped, at least
``MIN_EXAMPLES_PER_SIDE`` per side) so downstream code can trust a ``Concept``. TruthfulQA lives in
``truthfulqa.py``; ``load_concept`` dispatches to it by name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_CONCEPTS_DIR",
    "MIN_EXAMPLES_PER_SIDE",
    "Concept",
    "Example",
    "build_concept",
    "concept_from_texts",
    "format_concept",
    "format_example",
    "list_concepts",
    "load_concept",
    "load_concept_file",
    "read_text_file",
]

BUILTIN_CONCEPTS_DIR: Path = Path(__file__).resolve().parent.parent / "assets" / "concepts"
MIN_EXAMPLES_PER_SIDE = 8
MAX_FILE_BYTES = 5 * 1024 * 1024
CONCEPT_FILE_SUFFIXES = (".jsonl", ".csv", ".txt")
_TRUTHFULQA = "truthfulqa"
_POSITIVE_LABELS = {"1", "true", "positive", "pos", "+"}
_NEGATIVE_LABELS = {"0", "false", "negative", "neg", "-"}


@dataclass(frozen=True)
class Example:
    """One side of one example: an optional question (the prompt) and the answer text."""

    question: str | None
    answer: str


@dataclass(frozen=True)
class Concept:
    """A named, validated set of positive and negative examples plus demo prompts."""

    name: str
    description: str
    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    prompts: tuple[str, ...] = ()
    positive_label: str = "positive"
    negative_label: str = "negative"

    def fingerprint(self) -> str:
        """Return a stable SHA-256 hex digest of the examples, for keying activation caches.

        Only the examples enter the hash: renaming a concept or editing its prompts does not
        invalidate cached activations, while any change to an example text does.
        """
        payload = {
            "version": 1,
            "positive": [[ex.question, ex.answer] for ex in self.positive],
            "negative": [[ex.question, ex.answer] for ex in self.negative],
        }
        blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def build_concept(
    name: str,
    description: str,
    positive: list[Example],
    negative: list[Example],
    *,
    prompts: list[str] | tuple[str, ...] = (),
    positive_label: str = "positive",
    negative_label: str = "negative",
    source: str = "concept",
) -> Concept:
    """Clean and validate raw examples into a ``Concept``; the single validation point.

    Texts are stripped; blank answers and exact duplicates are dropped (order kept).

    Raises:
        ValueError: if a side is left with fewer than ``MIN_EXAMPLES_PER_SIDE`` examples, all of a
            side's examples are duplicates, or both sides are identical. ``source`` names the
            input (e.g. a file path) in the message.
    """
    sides = {}
    for side, raw in (("positive", positive), ("negative", negative)):
        kept: dict[Example, None] = {}
        n_blank = 0
        for ex in raw:
            answer = ex.answer.strip()
            question = ex.question.strip() if ex.question is not None else None
            if not answer:
                n_blank += 1
                continue
            kept.setdefault(Example(question or None, answer), None)
        n_dup = len(raw) - n_blank - len(kept)
        if len(kept) == 1 and n_dup > 0:
            raise ValueError(
                f"{source}: all {len(raw) - n_blank} {side} examples are duplicates of the same "
                f"text; give at least {MIN_EXAMPLES_PER_SIDE} different {side} examples."
            )
        if len(kept) < MIN_EXAMPLES_PER_SIDE:
            raise ValueError(
                f"{source}: only {len(kept)} usable {side} examples ({n_blank} blank and {n_dup} "
                f"duplicates removed); at least {MIN_EXAMPLES_PER_SIDE} distinct {side} examples "
                "are needed. Add more examples."
            )
        sides[side] = tuple(kept)
    if set(sides["positive"]) == set(sides["negative"]):
        raise ValueError(
            f"{source}: the positive and negative examples are identical; the negative side must "
            "hold the contrasting examples (e.g. rude replies against polite ones)."
        )
    clean_prompts = tuple(dict.fromkeys(p.strip() for p in prompts if p.strip()))
    return Concept(
        name=name,
        description=description,
        positive=sides["positive"],
        negative=sides["negative"],
        prompts=clean_prompts,
        positive_label=positive_label,
        negative_label=negative_label,
    )


def concept_from_texts(
    positive: list[str], negative: list[str], *, name: str = "custom", description: str = ""
) -> Concept:
    """Build a concept from two lists of bare texts (no question).

    Raises:
        TypeError: if a side is not a list/tuple of strings.
        ValueError: if validation fails (see ``build_concept``).
    """
    sides = []
    for side, texts in (("positive", positive), ("negative", negative)):
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(
                f"{side} must be a list of strings, got {type(texts).__name__}; "
                "split a pasted block into one string per example."
            )
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"{side} must hold only strings, found {bad[0]!r}.")
        sides.append([Example(None, t) for t in texts])
    return build_concept(name, description, sides[0], sides[1], source=name)


def read_text_file(path: str | Path) -> str:
    """Read a user-supplied UTF-8 text file of at most 5 MB.

    Raises:
        ValueError: if the file is missing, a directory, too large, binary or not UTF-8.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"File not found: {str(p)!r}; check the path.")
    if p.is_dir():
        raise ValueError(f"{str(p)!r} is a directory, not a file; give the path of a file.")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{str(p)!r} is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit; "
            "use a smaller sample of examples."
        )
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"Cannot read {str(p)!r} ({exc.strerror}); check its permissions."
        ) from exc
    if b"\x00" in data:
        raise ValueError(f"{str(p)!r} looks like a binary file; give a UTF-8 text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{str(p)!r} is not valid UTF-8 text (byte {exc.start}); re-save it as UTF-8."
        ) from exc


def _parse_label(value: Any, where: str) -> bool:
    key = str(value).strip().lower()
    if key in _POSITIVE_LABELS or key in _NEGATIVE_LABELS:
        return key in _POSITIVE_LABELS
    raise ValueError(f"{where}: label {value!r} is not 1/0 or 'positive'/'negative'.")


def _record_examples(record: dict[str, Any], where: str) -> tuple[list[Example], list[Example]]:
    """Examples from one JSONL object or CSV row: a pair or a labelled text."""
    for key in ("question", "positive", "negative", "text"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: field {key!r} must be a string, got {value!r}.")
    question = record.get("question") or None
    if "positive" in record or "negative" in record:
        pos, neg = record.get("positive") or "", record.get("negative") or ""
        return [Example(question, pos)], [Example(question, neg)]
    if "text" in record and "label" in record:
        ex = Example(question, record["text"] or "")
        return ([ex], []) if _parse_label(record["label"], where) else ([], [ex])
    raise ValueError(
        f"{where}: expected keys 'positive' and 'negative', or 'text' and 'label'; "
        f"got {sorted(record)}."
    )


def load_concept_file(path: str | Path) -> Concept:
    """Load a custom concept from a ``.jsonl``, ``.csv`` or ``.txt`` file.

    Formats:
        - JSONL: one object per line, either ``{"positive", "negative"[, "question"]}`` or
          ``{"text", "label"[, "question"]}`` with label 1/0 or "positive"/"negative"; an optional
          ``{"type": "meta", "name", "description", "positive_label", "negative_label",
          "prompts"}`` line.
        - CSV: a header with columns ``positive,negative[,question]`` or ``text,label[,question]``.
        - TXT: one example per line, ``+ text`` for positive and ``- text`` for negative;
          blank lines and lines starting with ``#`` are skipped.

    Raises:
        ValueError: if the file is unreadable, malformed (the line is named) or fails validation.
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in CONCEPT_FILE_SUFFIXES:
        raise ValueError(
            f"Unsupported concept file type {suffix or '(none)'!r} for {str(p)!r}; "
            f"use one of {', '.join(CONCEPT_FILE_SUFFIXES)}."
        )
    text = read_text_file(p)
    meta: dict[str, Any] = {}
    pos: list[Example] = []
    neg: list[Example] = []
    if suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{p.name} line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc.msg}); fix or remove it.") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {record!r}.")
            if record.get("type") == "meta":
                meta = record
                if not isinstance(meta.get("prompts", []), list):
                    raise ValueError(f"{where}: meta 'prompts' must be a list of strings.")
                continue
            p_ex, n_ex = _record_examples(record, where)
            pos += p_ex
            neg += n_ex
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
        if not ({"positive", "negative"} <= columns or {"text", "label"} <= columns):
            tqa = " (a TruthfulQA CSV? use spec 'truthfulqa' with truthfulqa_csv=PATH)"
            raise ValueError(
                f"{p.name}: CSV needs columns 'positive,negative[,question]' or "
                f"'text,label[,question]'; found {sorted(columns) or 'no header'}"
                f"{tqa if 'incorrect answers' in columns else ''}."
            )
        for row in reader:
            # Extra cells of a ragged row land under the key None; ignore them.
            record = {(k or "").strip().lower(): v for k, v in row.items() if k is not None}
            p_ex, n_ex = _record_examples(record, f"{p.name} line {reader.line_num}")
            pos += p_ex
            neg += n_ex
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped[0] not in "+-":
                raise ValueError(
                    f"{p.name} line {lineno}: start the line with '+ ' (positive) or '- ' "
                    f"(negative); got {stripped[:40]!r}."
                )
            (pos if stripped[0] == "+" else neg).append(Example(None, stripped[1:]))
    return build_concept(
        str(meta.get("name") or p.stem),
        str(meta.get("description") or ""),
        pos,
        neg,
        prompts=[str(x) for x in meta.get("prompts") or []],
        positive_label=str(meta.get("positive_label") or "positive"),
        negative_label=str(meta.get("negative_label") or "negative"),
        source=p.name,
    )


def _builtin_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_CONCEPTS_DIR.glob("*.jsonl"))}


def list_concepts() -> list[dict[str, Any]]:
    """Describe the built-in concepts and TruthfulQA.

    Returns:
        One dict per concept with keys ``name``, ``description``, ``n_positive``, ``n_negative``
        and ``n_prompts``. TruthfulQA's counts are ``None`` (it is loaded on demand).
    """
    from odesteer_core.truthfulqa import TRUTHFULQA_DESCRIPTION, TRUTHFULQA_N_PROMPTS

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
    builtins = _builtin_paths()
    if key.lower() in builtins:
        return load_concept_file(builtins[key.lower()])
    if key.lower() == _TRUTHFULQA:
        # Local import: truthfulqa.py builds on this module's types.
        from odesteer_core.truthfulqa import load_truthfulqa_questions, truthfulqa_concept

        questions = load_truthfulqa_questions(truthfulqa_csv)
        return truthfulqa_concept(questions, split=split, fold=fold, seed=seed)
    path = Path(key).expanduser()
    if path.suffix.lower() in CONCEPT_FILE_SUFFIXES or path.exists():
        return load_concept_file(path)
    valid = ", ".join([*builtins, _TRUTHFULQA])
    raise ValueError(
        f"Unknown concept {key!r}; choose one of {valid}, or give the path of a "
        f"{'/'.join(CONCEPT_FILE_SUFFIXES)} file."
    )


def _uses_chat_template(tokenizer: Any) -> bool:
    return tokenizer is not None and getattr(tokenizer, "chat_template", None) is not None


def format_example(ex: Example, tokenizer: Any = None) -> str:
    """Render one example as the text whose last-token activation is recorded.

    Base models (``tokenizer`` is None or has no chat template) get ``"Q: {q}\\nA: {a}"``, or just
    the answer when there is no question. Chat models get the user/assistant chat template; a bare
    answer becomes a lone assistant turn when the template accepts it, else plain text.
    """
    if not _uses_chat_template(tokenizer):
        return ex.answer if ex.question is None else f"Q: {ex.question}\nA: {ex.answer}"
    messages = [{"role": "assistant", "content": ex.answer}]
    if ex.question is not None:
        messages.insert(0, {"role": "user", "content": ex.question})
        return tokenizer.apply_chat_template(messages, tokenize=False)
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # templates may reject a conversation that starts with the assistant
        return ex.answer
    return rendered if isinstance(rendered, str) and ex.answer in rendered else ex.answer


def format_concept(concept: Concept, tokenizer: Any = None) -> tuple[list[str], list[str]]:
    """Render a concept's examples with ``format_example``: (positive texts, negative texts)."""
    return (
        [format_example(ex, tokenizer) for ex in concept.positive],
        [format_example(ex, tokenizer) for ex in concept.negative],
    )

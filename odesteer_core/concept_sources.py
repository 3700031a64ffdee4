"""Where concepts come from: the built-ins, TruthfulQA, and users' JSONL, CSV or text files.

Built-in concepts live as JSONL files in ``assets/concepts``; ``load_concept`` takes a built-in
name, ``"truthfulqa"`` (``truthfulqa.py``) or a file path. User files are read once, size- and
encoding-checked, and validated into a ``Concept`` by ``concepts.build_concept``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .concepts import Concept, Example, build_concept

__all__ = [
    "BUILTIN_CONCEPTS_DIR",
    "CONCEPT_FILE_SUFFIXES",
    "MAX_FILE_BYTES",
    "list_concepts",
    "load_concept",
    "load_concept_file",
    "read_text_file",
]

BUILTIN_CONCEPTS_DIR: Path = Path(__file__).resolve().parent.parent / "assets" / "concepts"
MAX_FILE_BYTES = 5 * 1024 * 1024
CONCEPT_FILE_SUFFIXES = (".jsonl", ".csv", ".txt")
_TRUTHFULQA = "truthfulqa"
_POSITIVE_LABELS = {"1", "true", "positive", "pos", "+"}
_NEGATIVE_LABELS = {"0", "false", "negative", "neg", "-"}


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

"""Concept files: JSONL, CSV or text, read once, size- and encoding-checked, and validated.

``read_text_file`` is the one reader of user files (size cap, UTF-8, clear errors);
``load_concept_file`` parses a file into a ``Concept`` through ``concept.build_concept``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from odesteer_core.concepts.concept import Concept, Example, build_concept

__all__ = ["CONCEPT_FILE_SUFFIXES", "MAX_FILE_BYTES", "load_concept_file", "read_text_file"]

MAX_FILE_BYTES = 5 * 1024 * 1024
CONCEPT_FILE_SUFFIXES = (".jsonl", ".csv", ".txt")
_POSITIVE_LABELS = {"1", "true", "positive", "pos", "+"}
_NEGATIVE_LABELS = {"0", "false", "negative", "neg", "-"}


def read_text_file(path: str | Path, *, shown_as: str | None = None) -> str:
    """Read a user-supplied UTF-8 text file of at most 5 MB.

    Args:
        path: The file.
        shown_as: How messages name the file (an upload's own name; default: the path).

    Raises:
        ValueError: if the file is missing, a directory, too large, binary or not UTF-8.
    """
    p = Path(path).expanduser()
    shown = repr(shown_as if shown_as is not None else str(p))
    if not p.exists():
        raise ValueError(f"File not found: {shown}; check the path.")
    if p.is_dir():
        raise ValueError(f"{shown} is a directory, not a file; give the path of a file.")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{shown} is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit; "
            "use a smaller sample of examples."
        )
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"Cannot read {shown} ({exc.strerror}); check its permissions.") from exc
    if b"\x00" in data:
        raise ValueError(f"{shown} looks like a binary file; give a UTF-8 text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{shown} is not valid UTF-8 text (byte {exc.start}); re-save it as UTF-8."
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


def load_concept_file(path: str | Path, *, shown_as: str | None = None) -> Concept:
    """Load a custom concept from a ``.jsonl``, ``.csv`` or ``.txt`` file.

    ``shown_as`` names the file in messages instead of its path (an upload's own name: a web
    user never sees a server path).

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
    shown = repr(shown_as if shown_as is not None else str(p))
    name = shown_as if shown_as is not None else p.name
    suffix = p.suffix.lower()
    if suffix not in CONCEPT_FILE_SUFFIXES:
        raise ValueError(
            f"Unsupported concept file type {suffix or '(none)'!r} for {shown}; "
            f"use one of {', '.join(CONCEPT_FILE_SUFFIXES)}."
        )
    text = read_text_file(p, shown_as=shown_as)
    meta: dict[str, Any] = {}
    pos: list[Example] = []
    neg: list[Example] = []
    if suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{name} line {lineno}"
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
                f"{name}: CSV needs columns 'positive,negative[,question]' or "
                f"'text,label[,question]'; found {sorted(columns) or 'no header'}"
                f"{tqa if 'incorrect answers' in columns else ''}."
            )
        for row in reader:
            # Extra cells of a ragged row land under the key None; ignore them.
            record = {(k or "").strip().lower(): v for k, v in row.items() if k is not None}
            p_ex, n_ex = _record_examples(record, f"{name} line {reader.line_num}")
            pos += p_ex
            neg += n_ex
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped[0] not in "+-":
                raise ValueError(
                    f"{name} line {lineno}: start the line with '+ ' (positive) or '- ' "
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
        source=name,
    )

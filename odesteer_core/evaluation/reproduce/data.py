"""The raw data of the paper's tasks, from the Hugging Face Hub or from local files.

Readers return plain records; the protocol (splits, sampling, formats) is ``tasks.py``. Local
files are JSONL (one object per line) or CSV with the Hub's field names, so a copy saved with
``datasets`` (``ds.to_json(path)``) reads as is:

- UltraFeedback (``HuggingFaceH4/ultrafeedback_binarized``): ``prompt``, ``chosen``, ``rejected``
  (chat message lists, or the response text), optional ``score_chosen``, ``score_rejected``;
- RealToxicityPrompts (``allenai/real-toxicity-prompts``): ``prompt`` as ``{"text", "toxicity"}``,
  or flat ``text`` (or ``prompt``) and ``toxicity`` fields;
- Jigsaw (Kaggle, no Hub copy): ``comment_text`` and ``toxicity`` columns of ``all_data.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

from odesteer_core.concepts.files import read_text_file

__all__ = [
    "UF_HUB",
    "RTP_HUB",
    "PreferencePair",
    "read_jigsaw",
    "read_rtp",
    "read_ultrafeedback",
]

UF_HUB = ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs", "test_prefs")
RTP_HUB = ("allenai/real-toxicity-prompts", "train")
PreferencePair = tuple[str, str, str]  # (prompt, chosen response, rejected response)


def _records(path: str) -> list[dict]:
    """Rows of a JSONL or CSV file as dicts; ``ValueError`` naming the file and line."""
    text, suffix = read_text_file(path), Path(path).suffix.lower()
    if suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    if suffix not in (".jsonl", ".json"):
        raise ValueError(f"{path}: use a .jsonl or .csv file")
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {i} is not JSON ({err.msg})") from None
    return rows


def _from_hub(dataset: str, split: str, hint: str) -> list[dict]:
    try:
        import datasets  # heavy, and only needed for Hub data

        return list(datasets.load_dataset(dataset, split=split))
    except Exception as exc:
        raise ValueError(
            f"could not load {dataset} ({split}) from the Hugging Face Hub "
            f"({type(exc).__name__}: {exc}); {hint}"
        ) from exc


def _last_assistant(value: object, where: str) -> str:
    """The last assistant turn of a chat message list (or the text itself)."""
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value) if value.lstrip().startswith("[") else value
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        turns = [
            m["content"] for m in value if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        if turns:
            return str(turns[-1])
    raise ValueError(f"{where}: no assistant turn in {str(value)[:80]!r}")


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_ultrafeedback(path: str | None, split: str) -> list[tuple[PreferencePair, float, float]]:
    """``((prompt, chosen, rejected), score_chosen, score_rejected)`` per row (NaN: no score)."""
    if path is None:
        hint = f"pass local copies with --ultrafeedback-{split} (JSONL, the Hub's fields)"
        rows = _from_hub(UF_HUB[0], UF_HUB[1] if split == "train" else UF_HUB[2], hint)
        where = UF_HUB[0]
    else:
        rows, where = _records(path), path
    out = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not {"prompt", "chosen", "rejected"} <= set(row):
            raise ValueError(f"{where} row {i}: needs 'prompt', 'chosen' and 'rejected' fields")
        pair = (
            str(row["prompt"]),
            _last_assistant(row["chosen"], f"{where} row {i} 'chosen'"),
            _last_assistant(row["rejected"], f"{where} row {i} 'rejected'"),
        )
        out.append((pair, _number(row.get("score_chosen")), _number(row.get("score_rejected"))))
    if not out:
        raise ValueError(f"{where} holds no rows")
    return out


def _rtp_record(row: object, where: str) -> tuple[str, float]:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected an object")
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.lstrip().startswith("{"):
        prompt = json.loads(prompt)
    if isinstance(prompt, dict):
        text, toxicity = prompt.get("text"), prompt.get("toxicity")
    else:
        text, toxicity = row.get("text", prompt), row.get("toxicity")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: no prompt text (a 'prompt' {{text, toxicity}} or 'text')")
    return text, _number(toxicity)


def read_rtp(path: str | None) -> list[tuple[str, float]]:
    """``(prompt text, prompt toxicity)`` per row of RealToxicityPrompts (NaN: unscored)."""
    if path is None:
        hint = "pass a local copy with --rtp-file (JSONL, the Hub's fields)"
        rows, where = _from_hub(*RTP_HUB, hint), RTP_HUB[0]
    else:
        rows, where = _records(path), path
    out = [_rtp_record(row, f"{where} row {i}") for i, row in enumerate(rows, start=1)]
    if not out:
        raise ValueError(f"{where} holds no rows")
    return out


def read_jigsaw(path: str) -> list[tuple[str, float]]:
    """``(comment_text, toxicity)`` per row of Kaggle's Jigsaw ``all_data.csv``."""
    rows = _records(path)
    if not rows or not {"comment_text", "toxicity"} <= set(rows[0]):
        raise ValueError(
            f"{path}: needs 'comment_text' and 'toxicity' columns (Jigsaw all_data.csv)"
        )
    out = []
    for row in rows:
        text, toxicity = row.get("comment_text"), _number(row.get("toxicity"))
        if isinstance(text, str) and text.strip() and math.isfinite(toxicity):
            out.append((text, toxicity))
    return out

"""The output folder: atomic files, a manifest that refuses another configuration, stored cells.

Layout of ``DIR``::

    manifest.json                      the model (and revision, dtype) this folder is for
    data/{task}-{key}.json             each task's prepared folds
    activations/                       the activation cache (``lm/activations.py``)
    steerers/{task}/fold{k}/{method}-{key}.safetensors
    cells/{task}/{arm}/gen-fold{k}-{key}.jsonl      generations (or MC scores) of one fold
    cells/{task}/{arm}/{judge}-{key}.json           one judge's per-item scores of a cell
    results.json, results (.md)    the rows, and the tables in Markdown

Every key is ``config.digest`` of exactly the settings that file depends on, so a rerun finds
what is done and changed settings miss only what they touch. Every file is written to a
temporary name in its folder and renamed (``os.replace``): a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["RESULTS_JSON", "RESULTS_MD", "Store", "write_atomic"]

MANIFEST_FORMAT = 1
RESULTS_JSON = "results.json"
RESULTS_MD = "results" + ".md"  # the tables in Markdown


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _arm_dir(method: str, setting: tuple[str, float] | None) -> str:
    return method if setting is None else f"{method}@{setting[0]}={setting[1]:g}"


class Store:
    """Paths and reads/writes of one output folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def check(self, identity: dict, force: bool) -> None:
        """Refuse a folder made for another model (unless ``force``); fail if not writable."""
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"--out {str(self.root)!r} is a file; give a folder")
        path = self.root / "manifest.json"
        if path.is_file() and not force:
            try:
                old = json.loads(path.read_text("utf-8")).get("identity")
            except (OSError, ValueError, AttributeError):
                old = None
            if old != identity:
                raise ValueError(
                    f"--out {str(self.root)!r} holds results of another configuration ({old}, "
                    f"not {identity}); use a new folder, or --force to reuse this one (results "
                    "of the other configuration stay but are never mixed in)"
                )
        probe = self.root
        while not probe.exists():
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            raise ValueError(f"--out {str(self.root)!r}: cannot write there (permission denied)")

    def claim(self, identity: dict) -> None:
        write_atomic(
            self.root / "manifest.json",
            json.dumps({"format": MANIFEST_FORMAT, "identity": identity}, indent=1),
        )

    # -- paths ---------------------------------------------------------------------------------
    def data(self, task: str, key: str) -> Path:
        return self.root / "data" / f"{task}-{key}.json"

    @property
    def activations(self) -> Path:
        return self.root / "activations"

    def steerer(self, task: str, fold: int, method: str, key: str) -> Path:
        return self.root / "steerers" / task / f"fold{fold}" / f"{method}-{key}.safetensors"

    def generations(self, task: str, arm: tuple, fold: int, key: str) -> Path:
        return self.root / "cells" / task / _arm_dir(*arm) / f"gen-fold{fold}-{key}.jsonl"

    def scores(self, task: str, arm: tuple, judge: str, key: str) -> Path:
        return self.root / "cells" / task / _arm_dir(*arm) / f"{judge}-{key}.json"

    # -- reads and writes ----------------------------------------------------------------------
    @staticmethod
    def write_rows(path: Path, rows: list[dict]) -> None:
        write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

    @staticmethod
    def read_rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    @staticmethod
    def write_json(path: Path, value: object) -> None:
        write_atomic(path, json.dumps(value, ensure_ascii=False, indent=1))

    @staticmethod
    def read_json(path: Path) -> object:
        return json.loads(path.read_text("utf-8"))

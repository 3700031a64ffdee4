"""Models known by a short name: the offline test model and the trained demo model.

``tiny-random-llama`` is built on first use (random weights, meaningless text: for tests).
``tiny-trained-llama`` is a small Llama trained on templated English chat (its model card is
``odesteer_core/lm/demo_model/README.md``), shipped inside the package so the app shows readable
steering with no network. Both load through the same ``from_pretrained`` path as a Hub model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from odesteer_core.lm.tiny_model import TINY_RANDOM_LLAMA, build_tiny_random_llama

__all__ = [
    "DEMO_MODEL_DIR",
    "PRESETS",
    "REBUILD_DEMO_MODEL",
    "TINY_TRAINED_LLAMA",
    "Preset",
    "check_demo_model",
    "resolve_preset",
]

TINY_TRAINED_LLAMA = "tiny-trained-llama"
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "demo_model"
REBUILD_DEMO_MODEL = (
    "python scripts/build_demo_corpus.py && python scripts/train_demo_model.py"
    " (from a checkout of the repository; see the model card)"
)
_DEMO_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


@dataclass(frozen=True)
class Preset:
    """A named model: the folder it loads from and what the app should say about it."""

    name: str
    folder: Path
    offline_test_model: bool  # random weights: every output is meaningless
    notice: str  # one line for the page and the console


def check_demo_model(folder: Path = DEMO_MODEL_DIR) -> Path:
    """The demo model's folder, if its files are there and readable; else a ValueError that
    names the missing or broken file and the command that rebuilds it."""
    for name in _DEMO_FILES:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            raise ValueError(
                f"the demo model file {path} is missing or empty; rebuild it with "
                f"{REBUILD_DEMO_MODEL}, or reinstall the package"
            )
    try:
        json.loads((folder / "config.json").read_text())
        with (folder / "model.safetensors").open("rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            size = (folder / "model.safetensors").stat().st_size
            if not 0 < header_len < min(size - 7, 100_000_000):
                raise ValueError("bad header length")
            header = json.loads(f.read(header_len))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            if not ends or max(ends) != size - 8 - header_len:
                raise ValueError("the tensor data is truncated or padded")
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise ValueError(
            f"the demo model in {folder} is corrupt ({err}); rebuild it with "
            f"{REBUILD_DEMO_MODEL}, or reinstall the package"
        ) from None
    return folder


def _tiny_random(cache: Path) -> Preset:
    return Preset(
        TINY_RANDOM_LLAMA,
        build_tiny_random_llama(cache / TINY_RANDOM_LLAMA),
        offline_test_model=True,
        notice="Offline test model: random weights, so every output is meaningless.",
    )


def _tiny_trained(cache: Path) -> Preset:
    return Preset(
        TINY_TRAINED_LLAMA,
        check_demo_model(),
        offline_test_model=False,
        notice=(
            "Demo model: a tiny Llama trained on templated English chat, shipped with the app "
            "(no network needed); steering is real, its English is simple."
        ),
    )


PRESETS = {TINY_RANDOM_LLAMA: _tiny_random, TINY_TRAINED_LLAMA: _tiny_trained}


def resolve_preset(name: str, cache: Path) -> Preset | None:
    """The preset called ``name`` (built or checked now), or None for any other model name."""
    make = PRESETS.get(name)
    return make(cache) if make is not None else None

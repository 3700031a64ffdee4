"""Finding the decoder layers of a causal LM: the modules whose outputs are the residual stream.

Known attribute paths first (``model.layers``, ``transformer.h``, ``gpt_neox.layers``, ...), then
the ModuleList whose length matches the config's number of hidden layers; an explicit
``layers_path`` for anything else.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig

__all__ = ["find_decoder_layers"]

_KNOWN_LAYER_PATHS = (
    "model.layers",  # Llama, Mistral, Qwen2/3, Gemma 2/3 text, Phi-3, OLMo/OLMo2
    "model.language_model.layers",  # Gemma 3 / Llava-style multimodal wrappers
    "language_model.model.layers",
    "transformer.h",  # GPT-2, Falcon, Bloom, GPT-J
    "gpt_neox.layers",  # GPT-NeoX, Pythia
    "model.decoder.layers",  # OPT
    "transformer.blocks",  # MPT
    "model.transformer.blocks",  # OLMo (hf_olmo)
    "transformer.layers",
    "layers",
)


def find_decoder_layers(
    model: torch.nn.Module, *, layers_path: str | None = None
) -> list[torch.nn.Module]:
    """Find the decoder layers of a causal LM, in order.

    Tries `layers_path` if given, then known attribute paths (`model.layers`, `transformer.h`,
    `gpt_neox.layers`, ...), then, among the `ModuleList`s whose length equals the config's
    number of hidden layers, the one with the most parameters.

    Raises:
        ValueError: The layers cannot be found; the message says how to set `layers_path`.
    """
    if layers_path is not None:
        found = _get_path(model, layers_path)
        if not isinstance(found, torch.nn.ModuleList) or len(found) == 0:
            raise ValueError(
                f"layers_path={layers_path!r} on {type(model).__name__} is "
                f"{type(found).__name__ if found is not None else 'missing'}, not a non-empty "
                "torch.nn.ModuleList of decoder layers; check the names in print(model)"
            )
        return list(found)
    expected = _expected_n_layers(model)
    for path in _KNOWN_LAYER_PATHS:
        found = _get_path(model, path)
        matches = expected is None or (found is not None and len(found) == expected)
        if isinstance(found, torch.nn.ModuleList) and len(found) > 0 and matches:
            return list(found)
    if expected is not None:
        candidates = [
            m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == expected
        ]
        if candidates:
            return list(max(candidates, key=lambda m: sum(p.numel() for p in m.parameters())))
    raise ValueError(
        f"could not find the decoder layers of {type(model).__name__}: none of "
        f"{', '.join(_KNOWN_LAYER_PATHS)} is a ModuleList"
        + (f" of {expected} layers" if expected is not None else "")
        + ", and no other ModuleList matches the config's number of hidden layers. Pass "
        "layers_path='model.layers' (the dotted path to the ModuleList of decoder layers, "
        "see print(model)) to load_lm or find_decoder_layers"
    )


def _expected_n_layers(model: torch.nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if not isinstance(config, PretrainedConfig):
        return None
    text = config.get_text_config()
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(text, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _get_path(root: object, path: str) -> object | None:
    current = root
    for part in path.split("."):
        current = getattr(current, part, None)
        if current is None:
            return None
    return current

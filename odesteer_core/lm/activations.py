"""Activations used to fit steerers: one layer's output at the last real token of each text.

Texts are batched with padding on the tokenizer's side (left or right; the last real token is
found from the attention mask either way), with position ids that count real tokens only, so a
text's activation does not depend on its batch. The forward pass stops right after the chosen
layer. Results are cached on disk as safetensors, keyed by everything that determines them, so
refitting a steerer is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from odesteer_core.lm.hooks import layer_output_hook
from odesteer_core.lm.loading import LoadedLM, cache_root
from odesteer_core.lm.tokens import token_ids

_CACHE_FORMAT = 1  # bump when the extraction changes, to invalidate old cache files


class _StopForward(Exception):
    """Raised by the capture hook: nothing after the chosen layer is needed."""


def extract_activations(
    lm: LoadedLM,
    texts: list[str],
    layer: int,
    *,
    batch_size: int = 16,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    cache_key: str | None = None,
) -> torch.Tensor:
    """Output of decoder layer `layer` (0-indexed) at the last real token of each text.

    Args:
        lm: The loaded model.
        texts: Already formatted texts (for chat models, the chat-template string).
        layer: Decoder layer index, `0 <= layer < lm.n_layers`.
        batch_size: Texts per forward pass.
        progress: Show a tqdm progress bar.
        cache_dir: Folder of the disk cache; None uses `$ODESTEER_CACHE/activations`
            (default `~/.cache/odesteer_studio/activations`).
        cache_key: Extra string mixed into the cache key, for anything else that changes the
            activations (e.g. fine-tuned weights saved again in the same local folder).

    Returns:
        Float32 CPU tensor of shape `(len(texts), lm.d_model)`.

    Raises:
        TypeError: `texts` is not a list of strings.
        ValueError: `texts` is empty, or `layer` or `batch_size` is out of range.
    """
    options = {"batch_size": batch_size, "progress": progress, "cache_dir": cache_dir}
    return extract_layers(lm, texts, [layer], cache_key=cache_key, **options)[layer]


def extract_layers(
    lm: LoadedLM,
    texts: list[str],
    layers: list[int],
    *,
    batch_size: int = 16,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    cache_key: str | None = None,
) -> dict[int, torch.Tensor]:
    """``extract_activations`` at several layers in one pass over the texts (a layer sweep).

    Each layer is cached on its own, as ``extract_activations`` caches it; only the layers not
    in the cache are computed, all in the same forward passes (stopped after the deepest).

    Returns:
        ``{layer: (len(texts), d_model) float32 CPU tensor}`` for every layer asked for.
    """
    texts = _check_texts(texts)
    layers = sorted({lm.check_layer(layer) for layer in layers})
    if not layers:
        raise ValueError("give at least one layer")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "activations"
    paths = {
        layer: folder / f"{_cache_digest(lm, texts, layer, cache_key)}.safetensors"
        for layer in layers
    }
    acts = {layer: _read_cache(paths[layer], (len(texts), lm.d_model)) for layer in layers}
    missing = [layer for layer in layers if acts[layer] is None]
    if missing:
        computed = _compute(lm, texts, missing, batch_size, progress)
        for layer in missing:
            _write_cache(paths[layer], computed[layer], lm, layer)
            acts[layer] = computed[layer]
    return acts


def encode_texts(lm: LoadedLM, texts: list[str]) -> dict[str, torch.Tensor]:
    """Tokenize and pad texts the way `extract_activations` feeds them to the model.

    Special tokens as ``tokens.token_ids`` adds them. Over-long texts lose their beginning (but
    keep a leading BOS). Padding goes on `lm.tokenizer.padding_side`.

    Returns:
        CPU tensors `input_ids`, `attention_mask` and `position_ids` (counting real tokens
        only), each of shape `(len(texts), longest)`.
    """
    tok = lm.tokenizer
    max_len = lm.max_length
    rows = []
    for text in texts:
        ids = token_ids(lm, text)
        if max_len is not None and len(ids) > max_len:
            keep_bos = tok.bos_token_id is not None and ids[0] == tok.bos_token_id
            ids = ids[:1] + ids[len(ids) - max_len + 1 :] if keep_bos else ids[-max_len:]
        rows.append(ids)
    longest = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), longest), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, ids in enumerate(rows):
        span = (
            slice(longest - len(ids), longest) if tok.padding_side == "left" else slice(0, len(ids))
        )
        input_ids[i, span] = torch.tensor(ids, dtype=torch.long)
        mask[i, span] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}


def _compute(
    lm: LoadedLM, texts: list[str], layers: list[int], batch_size: int, progress: bool
) -> dict[int, torch.Tensor]:
    backbone = lm.model.base_model  # skips the LM head: no (batch, seq, vocab) logits
    accepted = inspect.signature(backbone.forward).parameters
    stop_early = _can_stop_early(lm.model)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths together
    out = {layer: torch.empty((len(texts), lm.d_model), dtype=torch.float32) for layer in layers}
    captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}

    owner = threading.get_ident()  # the model is shared: other users' passes are not ours

    def capture(layer: int):
        def hook(hidden: torch.Tensor) -> None:
            if threading.get_ident() != owner:
                return
            captured[layer].append(hidden)
            if stop_early and layer == layers[-1]:
                raise _StopForward  # the deepest layer asked for: the rest is not needed

        return hook

    where = f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers}"
    bar = tqdm(total=len(texts), desc=f"activations @ {where}", unit="text", disable=not progress)
    with contextlib.ExitStack() as stack:
        for layer in layers:
            stack.enter_context(layer_output_hook(lm.layers[layer], capture(layer)))
        stack.enter_context(torch.inference_mode())
        stack.enter_context(lm.cpu_kernels())
        stack.enter_context(bar)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = encode_texts(lm, [texts[i] for i in idx])
            kwargs = {k: v.to(lm.device) for k, v in enc.items() if k in accepted}
            if "use_cache" in accepted:
                kwargs["use_cache"] = False
            for seen in captured.values():
                seen.clear()
            with contextlib.suppress(_StopForward):
                backbone(**kwargs)
            mask = enc["attention_mask"]
            last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # index of the last real token
            rows = torch.arange(len(idx))
            for layer in layers:
                seen = captured[layer]
                assert len(seen) == 1, f"layer {layer} ran {len(seen)} times in one forward"
                hidden = seen[0]  # (batch, seq, d_model)
                picked = hidden[rows.to(hidden.device), last.to(hidden.device)]
                out[layer][idx] = picked.float().cpu()
            bar.update(len(idx))
    return out


def _can_stop_early(model: torch.nn.Module) -> bool:
    # accelerate moves offloaded weights back in its post-forward hook; aborting the forward
    # would strand them on the GPU, so offloaded models run to the end.
    placement = set(map(str, getattr(model, "hf_device_map", {}).values()))
    return "disk" not in placement and not ("cpu" in placement and len(placement) > 1)


def _check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: pass at least one text to extract activations from")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}: {text!r:.80}")
    return list(texts)


def _cache_digest(lm: LoadedLM, texts: list[str], layer: int, cache_key: str | None) -> str:
    key = {
        "format": _CACHE_FORMAT,
        "model": lm.name,
        "revision": lm.revision,
        "dtype": str(lm.dtype),
        "layer": layer,
        "cache_key": cache_key,
        "texts": texts,
    }
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()


def _read_cache(path: Path, shape: tuple[int, int]) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        acts = load_file(path)["activations"]
    except (OSError, SafetensorError, KeyError) as err:
        warnings.warn(
            f"ignoring unreadable activation cache {path} ({err}); recomputing", stacklevel=3
        )
        return None
    if tuple(acts.shape) != shape or acts.dtype != torch.float32:
        warnings.warn(
            f"ignoring activation cache {path} with shape {tuple(acts.shape)}", stacklevel=3
        )
        return None
    return acts


def _write_cache(path: Path, acts: torch.Tensor, lm: LoadedLM, layer: int) -> None:
    metadata = {"model": lm.name, "revision": str(lm.revision), "layer": str(layer)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
        os.close(fd)
        try:
            save_file({"activations": acts.contiguous()}, tmp, metadata=metadata)
            os.replace(tmp, path)  # atomic: readers never see a half-written file
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(f"could not write activation cache {path} ({err})", stacklevel=3)

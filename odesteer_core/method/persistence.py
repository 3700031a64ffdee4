"""Save and load fitted steerers: one safetensors file, metadata as JSON in its header.

Never pickle: a steerer file holds tensors plus a JSON object naming the method, its
hyper-parameters and its fitted scalars, so loading one cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from odesteer_core.method.base import Steerer
from odesteer_core.method.registry import STEERERS

__all__ = ["load_steerer", "save_steerer"]

FORMAT = "odesteer-steerer"
VERSION = 1


def save_steerer(steerer: Steerer, path: str | Path) -> Path:
    """Write a fitted steerer to ``path`` (conventionally ``*.safetensors``)."""
    if not isinstance(steerer, Steerer):
        raise TypeError(f"expected a Steerer, got {type(steerer).__name__}")
    tensors, scalars = steerer.fitted_state()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "method": steerer.name,
        "params": steerer.get_params(),
        "fitted": scalars,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(cpu, str(tmp), metadata={"odesteer": json.dumps(meta)})
    tmp.replace(path)  # atomic: a crash never leaves a half-written steerer behind
    return path


def load_steerer(path: str | Path, *, device: str | torch.device = "cpu") -> Steerer:
    """Read a steerer written by ``save_steerer``; raises ``ValueError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no steerer file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            # clone: fresh, aligned memory, so results are bit-identical to the saved steerer's
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None
    try:
        meta = json.loads(header["odesteer"])
        if meta.get("format") != FORMAT:
            raise KeyError("format")
        method, params, fitted = meta["method"], meta["params"], meta["fitted"]
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ValueError(
            f"{path} is a safetensors file but not an ODESteer Studio steerer "
            "(no 'odesteer' metadata); save one with oc.save_steerer"
        ) from None
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} has steerer format version {meta.get('version')}; need {VERSION}")
    if method not in STEERERS:
        raise ValueError(f"{path} names unknown method {method!r}; valid: {sorted(STEERERS)}")
    steerer = STEERERS[method](**params)
    try:
        steerer.load_fitted_state(tensors, fitted)
        steerer.to(device)
    except (KeyError, AttributeError, TypeError) as err:
        raise ValueError(f"{path} is missing fitted state for {method} ({err})") from None
    return steerer

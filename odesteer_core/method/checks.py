"""Input checks shared by the public entry points: one place, one message style."""

from __future__ import annotations

import math

import torch

__all__ = ["NotFittedError", "check_activations", "check_pair", "check_steps", "check_T"]

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


class NotFittedError(ValueError, AttributeError):
    """Raised when a steerer or barrier is used before ``fit``."""


def check_activations(x: object, name: str, *, d: int | None = None) -> torch.Tensor:
    """Return ``x`` if it is a finite float tensor of shape (n, d); raise otherwise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating tensor (float32, float16, bfloat16 or float64), "
            f"got {x.dtype}"
        )
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d), got {tuple(x.shape)}; "
            "use x.reshape(-1, d) for a batch of sequences"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{name} has zero features (shape {tuple(x.shape)})")
    if d is not None and x.shape[1] != d:
        raise ValueError(
            f"{name} has d={x.shape[1]} but the steerer was fitted with d={d}; "
            "steer activations from the same model and layer it was fitted on"
        )
    # A finite sum means finite entries (one reduction, the hot path's check); an infinite or
    # NaN sum may also come from an overflow of large finite entries, so then look entry by entry.
    if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); clean the input first")
    return x


def check_pair(pos: object, neg: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the two classes passed to ``fit``."""
    pos = check_activations(pos, "pos")
    neg = check_activations(neg, "neg")
    if pos.shape[1] != neg.shape[1]:
        raise ValueError(f"pos has d={pos.shape[1]} but neg has d={neg.shape[1]}; they must match")
    for name, x in (("pos", pos), ("neg", neg)):
        if x.shape[0] < 2:
            raise ValueError(
                f"{name} has {x.shape[0]} sample(s); at least 2 per class are needed "
                "(fit needs both a positive and a negative class)"
            )
    if pos.device != neg.device:
        raise ValueError(f"pos is on {pos.device} but neg is on {neg.device}; put both on one")
    if pos.shape == neg.shape and torch.equal(pos.float(), neg.float()):
        raise ValueError("pos and neg are identical: one class only, nothing to separate")
    return pos, neg


def check_T(T: object) -> float:
    """The integration horizon: a finite real number."""
    if isinstance(T, torch.Tensor):
        if T.numel() != 1:
            raise TypeError(f"T must be a number, got a tensor of shape {tuple(T.shape)}")
        T = T.item()
    if isinstance(T, bool) or not isinstance(T, (int, float)):
        raise TypeError(f"T must be a real number, got {type(T).__name__}")
    if not math.isfinite(T):
        raise ValueError(f"T must be finite, got {T}")
    return float(T)


def check_steps(steps: object) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an int >= 1, got {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return steps

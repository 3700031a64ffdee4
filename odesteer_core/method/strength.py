"""Strength in model-independent units.

A useful ``T`` scales with the model's activation norm (ODESteer rotates ``a`` by about
``T / |a|``), so users set a *relative* strength: the distance an activation travels, as a fraction
of the median activation norm seen at fit time. Each method's own speed (``|v|``: 1 for
unit-speed fields, ``|mu+ - mu-|`` for CAA) is divided out, so one relative strength moves every
method's activations the same distance and the arms of a comparison are on equal footing.
"""

from __future__ import annotations

import math

from odesteer_core.method.base import Steerer
from odesteer_core.method.checks import check_T

__all__ = ["MAX_STRENGTH", "check_strength", "relative_to_T", "T_to_relative"]

MAX_STRENGTH = 4.0  # four median norms: far past where any method still writes text


def check_strength(strength: object, name: str = "strength") -> float:
    """The one check of a relative strength: a finite real number in ``[0, MAX_STRENGTH]``.

    Negative strengths are refused: steering away from a concept is done by swapping its
    positive and negative examples, which keeps every readout's sign meaningful.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(strength).__name__}")
    if not math.isfinite(strength) or not 0 <= strength <= MAX_STRENGTH:
        raise ValueError(
            f"{name} must be a finite number in [0, {MAX_STRENGTH:g}] (a fraction of the median "
            f"activation norm), got {strength!r}"
        )
    return float(strength)


def relative_to_T(steerer: Steerer, strength: float) -> float:
    """``T`` that moves activations by ``strength * median |a|`` with this fitted steerer."""
    steerer._require_fit()
    strength = check_strength(strength)
    if steerer.speed_ <= 0 or not math.isfinite(steerer.speed_):
        raise ValueError(f"{steerer.name} has a zero field (the classes have equal means?)")
    return strength * steerer.median_norm_ / steerer.speed_


def T_to_relative(steerer: Steerer, T: float) -> float:
    """Inverse of ``relative_to_T``."""
    steerer._require_fit()
    return check_T(T) * steerer.speed_ / steerer.median_norm_

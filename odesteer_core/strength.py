"""Strength in model-independent units.

A useful ``T`` scales with the model's activation norm (ODESteer rotates ``a`` by about
``T / |a|``), so users set a *relative* strength: the distance an activation travels, as a fraction
of the median activation norm seen at fit time. Each method's own speed (``|v|``: 1 for
unit-speed fields, ``|mu+ - mu-|`` for CAA) is divided out, so one relative strength moves every
method's activations the same distance and the arms of a comparison are on equal footing.
"""

from __future__ import annotations

import math

from ._checks import check_T
from .steerers import Steerer

__all__ = ["relative_to_T", "T_to_relative"]


def relative_to_T(steerer: Steerer, strength: float) -> float:
    """``T`` that moves activations by ``strength * median |a|`` with this fitted steerer."""
    steerer._require_fit()
    strength = check_T(strength)
    if steerer.speed_ <= 0 or not math.isfinite(steerer.speed_):
        raise ValueError(f"{steerer.name} has a zero field (the classes have equal means?)")
    return strength * steerer.median_norm_ / steerer.speed_


def T_to_relative(steerer: Steerer, T: float) -> float:
    """Inverse of ``relative_to_T``."""
    steerer._require_fit()
    return check_T(T) * steerer.speed_ / steerer.median_norm_

"""2-D views of activations by name: ``PROJECTIONS``, ``make_projector``, ``fit_projector``.

Projectors are fitted once per concept (estimator style) on its clouds, then place every token's
steering path. ``plane`` and ``pca`` are exact linear views (``linear.py``); ``umap`` is
approximate and distorts distances (``umap_view.py``). The contract is ``base.Projector``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from odesteer_core.view.base import Projector
from odesteer_core.view.linear import PCAProjector, PlaneProjector
from odesteer_core.view.umap_view import UMAPProjector

if TYPE_CHECKING:
    from odesteer_core.pipeline import FittedConcept

__all__ = ["PROJECTIONS", "fit_projector", "make_projector"]


PROJECTIONS: dict[str, type[Projector]] = {
    cls.name: cls for cls in (PlaneProjector, PCAProjector, UMAPProjector)
}


def make_projector(name: str, **options) -> Projector:
    """Build an unfitted projector by registry name; options are the class's keyword arguments."""
    if name not in PROJECTIONS:
        raise ValueError(f"unknown projection {name!r}; valid projections: {sorted(PROJECTIONS)}")
    try:
        return PROJECTIONS[name](**options)
    except TypeError as err:
        raise TypeError(f"{name}: {err}; see help(oc.PROJECTIONS[{name!r}])") from None


def fit_projector(name: str, fitted: FittedConcept, **options) -> Projector:
    """Build projector ``name`` and fit it on a fitted concept's clouds (do this at concept fit).

    The ``plane`` view takes its second axis from the concept's ODESteer field; ``umap`` keys its
    disk cache by model, layer and concept fingerprint (plus options and the clouds' hash).

    Args:
        name: One of ``PROJECTIONS`` ("plane", "pca", "umap").
        fitted: The fitted concept whose clouds are projected.
        **options: The projector class's keyword arguments (e.g. ``n_neighbors`` for umap).
    """
    projector = make_projector(name, **options)
    key = {"model": fitted.model_name, "layer": fitted.layer}
    key["concept"] = fitted.concept.fingerprint()
    return projector.fit(fitted.pos, fitted.neg, steerer=fitted.odesteer, key=key)

"""The ``Projector`` base class: 2-D views fitted once on a concept's clouds (estimator style).

``fit(pos, neg, steerer=None, key=None)`` learns the view from the positive and negative
activations; ``transform(x)`` maps any (n, d) activations to (n, 2). Subclasses are in
``linear.py`` (exact linear views) and ``umap_view.py``; ``registry.py`` names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from odesteer_core.method.checks import NotFittedError

if TYPE_CHECKING:
    from odesteer_core.method.base import Steerer

__all__ = ["Projector"]

CHUNK_ROWS = 4096  # rows per distance matrix / velocity call: bounds peak memory


def _as_rows(x: object, name: str, d: int | None = None) -> np.ndarray:
    """A finite (n, d) float32 numpy array from a tensor or array; raises otherwise."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} has d={x.shape[1]} but the projector was fitted with d={d}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


class Projector:
    """Base class: maps (n, d) activations to (n, 2) float32 plot coordinates."""

    name: ClassVar[str]
    title: ClassVar[str]  # shown in plot titles
    exact: ClassVar[bool]  # linear: coordinates are true distances along the axes

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = int(seed)

    def fit(
        self,
        pos: torch.Tensor | np.ndarray,
        neg: torch.Tensor | np.ndarray,
        *,
        steerer: Steerer | None = None,
        key: dict | None = None,
    ) -> Projector:
        """Fit on the positive (N, d) and negative (M, d) clouds; returns ``self``.

        Args:
            pos, neg: The concept's activations.
            steerer: A fitted steerer whose field gives the ``plane`` view's second axis
                (usually the fitted ODESteer); ignored by the other views.
            key: Where the clouds come from (e.g. model, layer, concept fingerprint); part of the
                ``umap`` disk-cache key and stored with the cached file.
        """
        pos = _as_rows(pos, "pos")
        neg = _as_rows(neg, "neg", d=pos.shape[1])
        if len(pos) < 2 or len(neg) < 2 or pos.shape[1] < 2:
            raise ValueError(
                f"need at least 2 positive and 2 negative activations with d >= 2, got "
                f"pos {pos.shape} and neg {neg.shape}"
            )
        if steerer is not None and getattr(steerer, "d_", pos.shape[1]) != pos.shape[1]:
            raise ValueError(f"steerer was fitted with d={steerer.d_}, clouds have {pos.shape[1]}")
        coords = self._fit(pos, neg, steerer, dict(key or {})).astype(np.float32)
        self.n_features_ = pos.shape[1]
        self.pos_2d_, self.neg_2d_ = coords[: len(pos)], coords[len(pos) :]  # (N, 2), (M, 2)
        return self

    def transform(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Project (n, d) activations to (n, 2) float32; call once with every point to place."""
        if not hasattr(self, "n_features_"):
            raise NotFittedError(f"{self.name} projector is not fitted yet; call .fit(pos, neg)")
        x = _as_rows(x, "x", d=self.n_features_)
        if len(x) == 0:
            return np.zeros((0, 2), np.float32)
        return self._transform(x).astype(np.float32)

    def _fit(self, pos, neg, steerer, key) -> np.ndarray:
        raise NotImplementedError

    def _transform(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

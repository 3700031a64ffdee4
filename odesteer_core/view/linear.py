"""The exact linear views: ``plane`` (CAA x barrier-gradient plane) and ``pca``.

- ``plane``: origin at the midpoint of the class means; x = unit CAA direction
  ``mean(pos) - mean(neg)``; y = the mean ODESteer direction (unit barrier gradient averaged over
  the clouds) minus its CAA part (Gram-Schmidt), or, if that vanishes, the clouds' widest
  direction orthogonal to x. Coordinates are true distances along the two axes.
- ``pca``: the two principal axes of the pooled clouds, PC1 pointing to ``pos``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from odesteer_core.view.base import CHUNK_ROWS, Projector

if TYPE_CHECKING:
    from odesteer_core.method.base import Steerer

__all__ = ["PCAProjector", "PlaneProjector"]


class _LinearProjector(Projector):
    """``(x - origin_) @ components_.T`` in float64; ``components_`` (2, d) orthonormal."""

    exact = True

    def _transform(self, x):
        return (x.astype(np.float64) - self.origin_) @ self.components_.T


def _top_direction(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right singular vectors (rows) and squared singular values of a centred (n, d) matrix."""
    # torch, not numpy: numpy's OpenBLAS threads fight torch's idle OpenMP threads (10x slower)
    _, s, vt = torch.linalg.svd(torch.from_numpy(centred), full_matrices=False)
    return vt.numpy(), (s**2).numpy()


def _fix_sign(v: np.ndarray) -> np.ndarray:
    """Deterministic sign for an axis without a natural one: largest loading positive."""
    return -v if v[np.argmax(np.abs(v))] < 0 else v


class PCAProjector(_LinearProjector):
    """Exact: the two principal axes of the pooled clouds (centred on their mean)."""

    name, title = "pca", "PCA of the clouds"

    def _fit(self, pos, neg, steerer, key):
        X = np.concatenate([pos, neg]).astype(np.float64)
        self.origin_ = X.mean(0)
        vt, var = _top_direction(X - self.origin_)
        first = vt[0] if vt[0] @ (pos.mean(0) - neg.mean(0)) >= 0 else -vt[0]
        self.components_ = np.stack([first, _fix_sign(vt[1])])  # (2, d)
        self.explained_variance_ratio_ = var[:2] / max(var.sum(), 1e-300)
        r1, r2 = self.explained_variance_ratio_
        self.axis_titles_ = (f"PC1 ({r1:.0%} of cloud variance)", f"PC2 ({r2:.0%})")
        return self._transform(X)


def _mean_direction(steerer: Steerer, X: np.ndarray) -> np.ndarray:
    """The steerer's field, normalised per row and averaged over ``X``: (d,) float64."""
    device = steerer.device  # keep the steerer where it is (it may serve a model on a GPU)
    total = np.zeros(X.shape[1])
    with torch.inference_mode():
        for i in range(0, len(X), CHUNK_ROWS):
            v = steerer.velocity(torch.from_numpy(X[i : i + CHUNK_ROWS]).to(device)).double().cpu()
            norm = v.norm(dim=1, keepdim=True)
            total += torch.where(norm > 0, v / norm.clamp_min(1e-300), 0.0).sum(0).numpy()
    return total / len(X)


class PlaneProjector(_LinearProjector):
    """Exact: the plane of the CAA direction and the mean ODESteer direction orthogonal to it.

    Args:
        second: "gradient" (default; falls back to "pca" without a steerer or when the field has
            no component orthogonal to CAA) or "pca" (the clouds' largest variance direction
            orthogonal to CAA).
    """

    name, title = "plane", "CAA x barrier-gradient plane"
    SECOND_AXES = ("gradient", "pca")

    def __init__(self, *, second: str = "gradient", seed: int = 0) -> None:
        super().__init__(seed=seed)
        if second not in self.SECOND_AXES:
            raise ValueError(f"unknown second axis {second!r}; valid: {list(self.SECOND_AXES)}")
        self.second = second

    def _fit(self, pos, neg, steerer, key):
        mu_pos, mu_neg = pos.mean(0, dtype=np.float64), neg.mean(0, dtype=np.float64)
        caa = mu_pos - mu_neg
        if np.linalg.norm(caa) == 0:
            raise ValueError("the class means coincide: no CAA direction to draw the plane")
        e1 = caa / np.linalg.norm(caa)
        self.origin_ = (mu_pos + mu_neg) / 2
        X = np.concatenate([pos, neg])
        e2, self.second_axis_ = None, "pca"
        if self.second == "gradient" and steerer is not None:
            g = _mean_direction(steerer, X)
            r = g - (g @ e1) * e1
            if np.linalg.norm(r) > 1e-6 * max(np.linalg.norm(g), 1e-300):
                e2, self.second_axis_ = r / np.linalg.norm(r), "gradient"
        if e2 is None:
            centred = X.astype(np.float64) - self.origin_
            centred -= np.outer(centred @ e1, e1)  # deflate CAA: what is left is orthogonal to it
            e2 = _fix_sign(_top_direction(centred)[0][0])
        e2 = e2 - (e2 @ e1) * e1  # second Gram-Schmidt pass: orthogonal to rounding error
        self.components_ = np.stack([e1, e2 / np.linalg.norm(e2)])
        second = {"gradient": "mean ODESteer direction", "pca": "largest cloud variance"}
        self.axis_titles_ = (
            "CAA direction mean(pos) - mean(neg), from the midpoint",
            f"{second[self.second_axis_]}, orthogonal to CAA",
        )
        return self._transform(X)

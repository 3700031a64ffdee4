"""2-D views of activations: the concept clouds and every token's steering path, for plotting.

Projectors by name from ``PROJECTIONS``, fitted once per concept (estimator style):

- ``plane`` (exact): origin at the midpoint of the class means; x = unit CAA direction
  ``mean(pos) - mean(neg)``; y = the mean ODESteer direction (unit barrier gradient averaged over
  the clouds) minus its CAA part (Gram-Schmidt), or, if that vanishes, the clouds' widest
  direction orthogonal to x. Coordinates are true distances along the two axes.
- ``pca`` (exact): the two principal axes of the pooled clouds, PC1 pointing to ``pos``.
- ``umap`` (approximate, distorts distances): a seeded umap-learn embedding of the clouds.

UMAP trade-off: a fitted ``umap.UMAP`` persists only by pickle, which we never load from a cache
folder (a swapped file would run code). The disk cache (``$ODESTEER_CACHE/umap``, safetensors)
holds the cloud embedding only, keyed by model, layer, concept fingerprint, options, umap-learn
version and a hash of the clouds. New points are placed by UMAP's own out-of-sample
initialisation (the first stage of ``UMAP.transform``: k nearest cloud points, smooth-kNN
weights, weighted mean of their embeddings), in numpy, without its ~100 refinement epochs (numba:
~7 s to compile per process, ~0.4 s a call; random, so memory and disk would disagree). So a path
point lands among the embeddings of its nearest examples; use an exact view to measure. A fit
with a cached key costs a hash and a file read in any process; ``transform`` takes milliseconds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ._checks import NotFittedError
from .models import cache_root

if TYPE_CHECKING:
    from .pipeline import FittedConcept
    from .steerers import Steerer

__all__ = [
    "PROJECTIONS",
    "PCAProjector",
    "PlaneProjector",
    "Projector",
    "UMAPProjector",
    "fit_projector",
    "make_projector",
]

_UMAP_CACHE_FORMAT = 1  # bump when the cached embedding changes meaning
_CHUNK = 4096  # rows per distance matrix / velocity call: bounds peak memory


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
        for i in range(0, len(X), _CHUNK):
            v = steerer.velocity(torch.from_numpy(X[i : i + _CHUNK]).to(device)).double().cpu()
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


class UMAPProjector(Projector):
    """Approximate: a seeded UMAP of the clouds, cached on disk; see the module docstring.

    Args:
        n_neighbors: UMAP's neighbourhood size (clipped to the number of cloud points - 1).
        min_dist: UMAP's minimum distance between embedded points.
        cache_dir: Folder of the embedding cache (default ``$ODESTEER_CACHE/umap``).
        use_cache: Read and write the disk cache.
    """

    name, title, exact = "umap", "UMAP (approximate)", False

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> None:
        super().__init__(seed=seed)
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 2:
            raise ValueError(f"n_neighbors must be an int >= 2, got {n_neighbors!r}")
        self.n_neighbors, self.min_dist = n_neighbors, float(min_dist)
        self.cache_dir, self.use_cache = cache_dir, bool(use_cache)

    def _fit(self, pos, neg, steerer, key):
        X = np.concatenate([pos, neg])  # (N + M, d) float32
        self.k_ = max(2, min(self.n_neighbors, len(X) - 1))
        folder = Path(self.cache_dir) if self.cache_dir is not None else cache_root() / "umap"
        options = {"n_neighbors": self.k_, "min_dist": self.min_dist, "seed": self.seed}
        options["umap_learn"] = importlib.metadata.version("umap-learn")  # no slow import
        header = json.dumps(
            {"format": _UMAP_CACHE_FORMAT, "options": options, "key": key, "shape": X.shape},
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(header.encode() + X.tobytes()).hexdigest()
        self.cache_path_ = folder / f"{digest[:40]}.safetensors" if self.use_cache else None
        embedding = _read_embedding(self.cache_path_, len(X)) if self.use_cache else None
        self.cache_hit_ = embedding is not None
        if embedding is None:
            embedding = self._run_umap(X)
            if self.use_cache:
                _write_embedding(self.cache_path_, embedding, {"odesteer_umap": header})
        self.embedding_ = embedding  # (N + M, 2) float32
        self.train_ = X.astype(np.float64)
        self.train_sq_ = (self.train_**2).sum(1)
        self.axis_titles_ = ("UMAP 1", "UMAP 2")
        return embedding

    def _run_umap(self, X: np.ndarray) -> np.ndarray:
        import umap  # slow (about 3 s, numba): only this branch needs it

        model = umap.UMAP(
            n_neighbors=self.k_, min_dist=self.min_dist, n_components=2, random_state=self.seed
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs.*")  # seeded: one thread, fine
            return np.ascontiguousarray(model.fit_transform(X), dtype=np.float32)

    def _transform(self, x):
        return np.concatenate([self._place(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])

    def _place(self, x: np.ndarray) -> np.ndarray:
        """UMAP's ``init_graph_transform`` for new points, vectorised: (n, d) -> (n, 2)."""
        x64 = x.astype(np.float64)
        d2 = (x64**2).sum(1)[:, None] + self.train_sq_[None] - 2.0 * x64 @ self.train_.T
        dist = np.sqrt(np.maximum(d2, 0.0))  # (n, N + M) exact Euclidean distances
        k = self.k_
        idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
        near = np.take_along_axis(dist, idx, 1)
        order = np.argsort(near, axis=1)
        idx, near = np.take_along_axis(idx, order, 1), np.take_along_axis(near, order, 1)
        sigma = _smooth_knn_sigma(near, k)
        weights = np.where(near > 0, np.exp(-near / sigma[:, None]), 1.0)  # (n, k)
        out = (weights[..., None] * self.embedding_[idx]).sum(1) / weights.sum(1, keepdims=True)
        same = near[:, 0] <= 1e-6 * near[:, -1]  # a cloud point lands on its embedding
        out[same] = self.embedding_[idx[same, 0]]
        return out


def _smooth_knn_sigma(dist: np.ndarray, k: int, n_iter: int = 64) -> np.ndarray:
    """umap's ``smooth_knn_dist`` as ``transform`` calls it (rho = 0), for all rows at once.

    Bisection for ``sigma`` with ``sum_j exp(-d_j / sigma) = log2(k)`` over neighbours 2..k.
    """
    target, rest = np.log2(k), dist[:, 1:]
    lo, hi, mid = np.zeros(len(dist)), np.full(len(dist), np.inf), np.ones(len(dist))
    active = np.ones(len(dist), bool)
    for _ in range(n_iter):
        psum = np.where(rest > 0, np.exp(-rest / mid[:, None]), 1.0).sum(1)
        active &= np.abs(psum - target) >= 1e-5
        if not active.any():
            break
        high = psum > target
        new_hi = np.where(high, mid, hi)
        new_lo = np.where(high, lo, mid)
        new_mid = np.where(np.isinf(new_hi), mid * 2, (new_lo + new_hi) / 2)
        lo, hi, mid = (
            np.where(active, new, old) for new, old in ((new_lo, lo), (new_hi, hi), (new_mid, mid))
        )
    return np.maximum(mid, 1e-3 * dist.mean())  # umap's MIN_K_DIST_SCALE floor


def _read_embedding(path: Path, n: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        embedding = load_file(str(path))["embedding"]
    except (OSError, SafetensorError, KeyError) as err:
        warnings.warn(f"ignoring unreadable UMAP cache {path} ({err}); refitting", stacklevel=4)
        return None
    if embedding.shape != (n, 2) or not np.isfinite(embedding).all():
        warnings.warn(f"ignoring UMAP cache {path} of shape {embedding.shape}", stacklevel=4)
        return None
    return embedding.astype(np.float32)


def _write_embedding(path: Path, embedding: np.ndarray, metadata: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
        os.close(fd)
        try:
            save_file({"embedding": embedding}, tmp, metadata=metadata)
            os.replace(tmp, path)  # atomic: readers never see a half-written file
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(f"could not write UMAP cache {path} ({err})", stacklevel=4)


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

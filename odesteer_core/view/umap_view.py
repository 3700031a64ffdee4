"""The ``umap`` view: a seeded umap-learn embedding of a concept's clouds, cached on disk.

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

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from odesteer_core.lm.loading import cache_root
from odesteer_core.view.base import CHUNK_ROWS, Projector

__all__ = ["UMAPProjector"]

_UMAP_CACHE_FORMAT = 1  # bump when the cached embedding changes meaning


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
        return np.concatenate(
            [self._place(x[i : i + CHUNK_ROWS]) for i in range(0, len(x), CHUNK_ROWS)]
        )

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

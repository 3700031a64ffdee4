"""The barrier ``h(a) = log p+(a) / p-(a)``, estimated by classification on random features.

Fit: label positives 1 and negatives 0, preprocess ``z = (a - mu) / |a - mu|`` (``mu`` the pooled
training mean when ``center=True``, else 0; the division only when ``normalize=True``), map
``phi(z)``, fit L2 logistic regression. Bayes gives

    h(a) = w . phi(z(a)) + b + log((1 - pi) / pi),      pi = share of positives,

and its gradient in closed form: ``u = J_phi^T w`` from the feature map, then through the
normalisation ``grad = (I - z z^T) u / |a - mu|``, which is orthogonal to ``a - mu``.

``center=False`` with the TensorSketch map is the paper's setting; ``center=True`` is this
project's default because it wins the synthetic benchmark where activations share a dominant mean
(docs/method.md section 9; ``benchmarks/synthetic_quality.py``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from odesteer_core.method.checks import NotFittedError, check_activations, check_pair
from odesteer_core.method.features import (
    FeatureMap,
    Identity,
    RandomFourier,
    TensorSketch,
    cache_key_matches,
    version_of,
)
from odesteer_core.method.flows import LinearBarrier, QuadraticBarrier
from odesteer_core.method.logistic import fit_logistic

__all__ = ["Barrier", "make_barrier"]

CHUNK_ROWS = 4096  # rows per feature-map call while fitting: bounds peak memory at (chunk, D)


class Barrier:
    """Density-ratio barrier on a feature map (estimator style: ``fit`` returns ``self``)."""

    def __init__(
        self,
        feature_map: FeatureMap,
        *,
        center: bool = True,
        normalize: bool = True,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.feature_map = feature_map
        self.center, self.normalize = bool(center), bool(normalize)
        self.C, self.max_iter, self.tol, self.seed = float(C), int(max_iter), float(tol), int(seed)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, pos: torch.Tensor, neg: torch.Tensor) -> Barrier:
        pos, neg = check_pair(pos, neg)
        X = torch.cat([pos, neg]).float()  # (n, d)
        y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).to(X.device)
        d = X.shape[1]
        self.mean_ = X.mean(0) if self.center else torch.zeros(d, device=X.device)
        # Without normalisation, divide by one fitted scalar so features are O(1) (the solver's
        # conditioning and C's meaning then do not depend on the model's activation norm).
        self.scale_ = 1.0
        if not self.normalize:
            self.scale_ = float((X - self.mean_).norm(dim=1).median().clamp_min(1e-12))
        z = self._preprocess(X)[0]
        generator = torch.Generator().manual_seed(self.seed)  # CPU draws: same hashes on any device
        self.feature_map.init(d, generator, z.cpu())
        self.feature_map.to(X.device)
        chunks = [self.feature_map(z[i : i + CHUNK_ROWS]) for i in range(0, len(z), CHUNK_ROWS)]
        phi = chunks[0] if len(chunks) == 1 else torch.cat(chunks)  # no 128 MB copy for one chunk
        del chunks
        w, b, self.n_iter_ = fit_logistic(phi, y, C=self.C, max_iter=self.max_iter, tol=self.tol)
        prior = len(pos) / len(X)
        self.coef_, self.intercept_ = w, b
        self.log_prior_ratio_ = math.log((1 - prior) / prior)
        self.train_accuracy_ = float(((phi @ w + b > 0).float() == y).float().mean())
        self.d_ = d
        return self

    # -- evaluation --------------------------------------------------------------------------
    def _require_fit(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this barrier is not fitted yet; call fit(pos, neg) first")

    def _preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, d) float32 -> (z, radius): ``z`` unit rows when normalising, radius (batch, 1)."""
        z = x - self.mean_
        if not self.normalize:
            return z / self.scale_, torch.full_like(z[:, :1], self.scale_)
        radius = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return z / radius, radius

    def value_and_grad(
        self, x: torch.Tensor, *, need_grad: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``h(x)`` (batch,) and ``grad h(x)`` (batch, d), float32, for float32 input ``x``.

        No input checks: this is the hot path, callers validate once.
        """
        z, radius = self._preprocess(x)
        offset = self.intercept_ + self.log_prior_ratio_
        if not need_grad:
            return self.feature_map.value(z, self.coef_) + offset, None
        logit, u = self.feature_map.value_vjp(z, self.coef_)
        h = logit + offset
        if self.normalize:
            u = u - z * (z * u).sum(1, keepdim=True)  # (I - z z^T) u, then / |a - mu| below
        return h, u / radius

    def quadratic(self) -> QuadraticBarrier | None:
        """``h`` as a quadratic form of ``a - mean`` for the lean flow (``flows.py``), or None
        where it does not apply (not normalised, or a feature map without a quadratic form).
        Built once per fitted state and device."""
        form_of = getattr(self.feature_map, "quadratic_form", None)
        form = form_of(self.coef_) if self.normalize and form_of is not None else None
        if form is None:
            return None
        key = (*form, self.mean_, version_of(self.mean_), self.intercept_, self.log_prior_ratio_)
        cached = getattr(self, "_quadratic_cache", None)
        if cached is None or not cache_key_matches(cached[0], key):
            K, k, c = form
            offset = self.intercept_ + self.log_prior_ratio_
            cached = (key, QuadraticBarrier(self.mean_, K, k, c + float(offset)))
            self._quadratic_cache = cached
        return cached[1]

    def linear(self) -> LinearBarrier | None:
        """``h`` as ``k.z + c`` for the lean flow (``flows.py``) when the map is linear, else
        None. Cheap to build (no matrix): made anew on each call."""
        if not isinstance(self.feature_map, Identity):
            return None
        offset = self.intercept_ + self.log_prior_ratio_
        return LinearBarrier(self.mean_, self.coef_, offset, self.normalize, self.scale_)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``h(x)`` for a (batch, d) tensor of any float dtype; float32 result on x's device."""
        self._require_fit()
        x = check_activations(x, "x", d=self.d_)
        return self.value_and_grad(x.float(), need_grad=False)[0]

    def to(self, device: torch.device | str) -> Barrier:
        self.feature_map.to(device)
        for name in ("mean_", "coef_"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).to(device))
        return self

    @property
    def device(self) -> torch.device:
        self._require_fit()
        return self.coef_.device

    # -- persistence (used by persistence.py) --------------------------------------------------
    def config(self) -> dict:
        return {
            "feature_map": self.feature_map.config(),
            "center": self.center,
            "normalize": self.normalize,
            "C": self.C,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "seed": self.seed,
        }

    # What ``fitted_state`` holds (``persistence.py`` checks files against it): each tensor's shape
    # in the names of ``feature_map.dims(d)`` and its kind, and each scalar's kind.
    tensor_spec: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {
        "mean_": (("d",), "float"),
        "coef_": (("D",), "float"),
    }
    scalar_spec: ClassVar[dict[str, str]] = {
        "intercept_": "real",
        "log_prior_ratio_": "real",
        "train_accuracy_": "fraction",
        "scale_": "positive",
        "n_iter_": "count",
        "d_": "d",
    }

    def state_spec(self, d: int) -> tuple[dict, dict[str, str], dict[str, int]]:
        """Tensor name -> (shape, kind), scalar name -> kind, and the sizes, for input width ``d``."""
        fmap = {f"fmap.{k}": v for k, v in self.feature_map.buffer_spec.items()}
        return {**self.tensor_spec, **fmap}, dict(self.scalar_spec), self.feature_map.dims(d)

    def fitted_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        self._require_fit()
        tensors = {"mean_": self.mean_, "coef_": self.coef_}
        tensors.update({f"fmap.{k}": v for k, v in self.feature_map.buffers().items()})
        scalars = {
            "intercept_": self.intercept_,
            "log_prior_ratio_": self.log_prior_ratio_,
            "train_accuracy_": self.train_accuracy_,
            "scale_": self.scale_,
            "n_iter_": self.n_iter_,
            "d_": self.d_,
        }
        return tensors, scalars

    def load_fitted_state(self, tensors: dict[str, torch.Tensor], scalars: dict) -> None:
        self.mean_, self.coef_ = tensors["mean_"], tensors["coef_"]
        self.feature_map.load_buffers(
            {k.removeprefix("fmap."): v for k, v in tensors.items() if k.startswith("fmap.")}
        )
        for name, value in scalars.items():
            setattr(self, name, value)


def make_barrier(
    settings: dict, coef0: float = 1.0, seed: int = 0, max_iter: int = 1000
) -> Barrier:
    """An unfitted ``Barrier`` from settings as a ``CalibrationReport`` names them (``features``,
    ``degree``, ``gamma``, ``n_components``, ``center``, ``normalize``, ``C``)."""
    if settings["features"] == "tensor_sketch":
        fmap = TensorSketch(settings["degree"], settings["n_components"], settings["gamma"], coef0)
    elif settings["features"] == "random_fourier":
        fmap = RandomFourier(settings["n_components"], settings["gamma"])
    else:
        fmap = Identity()
    return Barrier(
        fmap,
        center=settings["center"],
        normalize=settings.get("normalize", True),
        C=settings["C"],
        max_iter=max_iter,
        seed=seed,
    )

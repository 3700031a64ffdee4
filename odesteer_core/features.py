"""Random feature maps for the barrier, each with a closed-form vector-Jacobian product.

A feature map turns a preprocessed activation ``z`` (batch, d) into features ``phi(z)`` (batch, D).
The barrier is linear in ``phi``, so its gradient needs only ``J_phi(z)^T w``; every map here
computes that product in closed form (no autograd in the steering hot path). ``tests/`` checks
each one against autograd with ``gradcheck`` in float64.

- ``TensorSketch``: the paper's map. A degree-p polynomial TensorSketch (Pham & Pagh, 2013) of
  ``[sqrt(gamma) * z, sqrt(coef0)]``: p CountSketches, multiplied in the FFT domain, so that
  ``<phi(a), phi(b)> ~ (gamma <a, b> + coef0)^p``. Same construction as scikit-learn's
  ``PolynomialCountSketch``.
- ``RandomFourier``: random Fourier features of an RBF kernel (the paper's ablation).
- ``Identity``: the plain linear map.

All state lives in tensors (``buffers()``) plus a JSON-able ``config()``, so a map can be saved
with safetensors and rebuilt exactly.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

__all__ = ["FEATURE_MAPS", "FeatureMap", "Identity", "RandomFourier", "TensorSketch"]


class FeatureMap:
    """Base class: ``init(d, generator)`` draws the random parts, then ``__call__``/``vjp``."""

    kind: ClassVar[str]
    n_features: int

    def init(self, d: int, generator: torch.Generator, z: torch.Tensor | None = None) -> None:
        raise NotImplementedError

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Features of ``z`` (batch, d) -> (batch, D)."""
        return self.forward_vjp(z, None)[0]

    def forward_vjp(
        self, z: torch.Tensor, w: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (batch, D) and, when ``w`` (D,) is given, ``J_phi(z)^T w`` (batch, d)."""
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def buffers(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_buffers(self, buffers: dict[str, torch.Tensor]) -> None:
        for name, value in buffers.items():
            setattr(self, name, value)

    def to(self, device: torch.device | str) -> FeatureMap:
        for name, value in self.buffers().items():
            setattr(self, name, value.to(device))
        return self


class TensorSketch(FeatureMap):
    """Polynomial-kernel TensorSketch of ``[sqrt(gamma) z, sqrt(coef0)]`` with ``degree`` factors."""

    kind = "tensor_sketch"

    def __init__(
        self, degree: int = 2, n_components: int = 8000, gamma: float = 0.1, coef0: float = 1.0
    ) -> None:
        if int(degree) != degree or degree < 1:
            raise ValueError(f"degree must be a positive integer, got {degree!r}")
        if int(n_components) != n_components or n_components < 2:
            raise ValueError(f"n_components must be an integer >= 2, got {n_components!r}")
        if not gamma > 0 or coef0 < 0:
            raise ValueError(f"need gamma > 0 and coef0 >= 0, got gamma={gamma}, coef0={coef0}")
        self.degree, self.n_components = int(degree), int(n_components)
        self.gamma, self.coef0 = float(gamma), float(coef0)
        self.n_features = self.n_components

    def init(self, d: int, generator: torch.Generator, z: torch.Tensor | None = None) -> None:
        n_in = d + (1 if self.coef0 > 0 else 0)  # the constant sqrt(coef0) column
        self.index_hash = torch.randint(
            0, self.n_components, (self.degree, n_in), generator=generator
        )  # (degree, n_in): bucket of each input coordinate
        self.sign_hash = (
            torch.randint(0, 2, (self.degree, n_in), generator=generator).float() * 2 - 1
        )  # (degree, n_in): +-1

    def _extend(self, z: torch.Tensor) -> torch.Tensor:
        x = math.sqrt(self.gamma) * z
        if self.coef0 > 0:
            const = torch.full_like(x[:, :1], math.sqrt(self.coef0))
            x = torch.cat([x, const], dim=1)
        return x  # (batch, n_in)

    def forward_vjp(self, z, w):
        x = self._extend(z)
        D = self.n_components
        spectra = []  # rfft of each CountSketch, (batch, D // 2 + 1) complex
        for k in range(self.degree):
            sketch = x.new_zeros(x.shape[0], D)
            sketch.index_add_(1, self.index_hash[k], x * self.sign_hash[k])
            spectra.append(torch.fft.rfft(sketch, dim=1))
        product = spectra[0]
        for spectrum in spectra[1:]:
            product = product * spectrum
        phi = torch.fft.irfft(product, n=D, dim=1)
        if w is None:
            return phi, None
        # d(w . conv(s_1..s_p)) / d s_k = correlation of w with conv of the other factors:
        # irfft(rfft(w) * conj(prod_{l != k} rfft(s_l))); then back through the CountSketch.
        w_spectrum = torch.fft.rfft(w, dim=0)
        grad_x = torch.zeros_like(x)
        for k in range(self.degree):
            others = w_spectrum.expand_as(product)
            for j, spectrum in enumerate(spectra):
                if j != k:
                    others = others * spectrum.conj()
            g_sketch = torch.fft.irfft(others, n=D, dim=1)  # (batch, D)
            grad_x += g_sketch[:, self.index_hash[k]] * self.sign_hash[k]
        grad_z = math.sqrt(self.gamma) * grad_x[:, : z.shape[1]]
        return phi, grad_z

    def config(self):
        return {
            "kind": self.kind,
            "degree": self.degree,
            "n_components": self.n_components,
            "gamma": self.gamma,
            "coef0": self.coef0,
        }

    def buffers(self):
        return {"index_hash": self.index_hash, "sign_hash": self.sign_hash}


class RandomFourier(FeatureMap):
    """Random Fourier features ``sqrt(2/D) cos(W z + b)`` of the RBF kernel ``exp(-gamma |z-z'|^2)``.

    ``gamma=None`` picks ``1 / (d * Var(z))`` from the data at ``init`` (scikit-learn's "scale").
    """

    kind = "random_fourier"

    def __init__(self, n_components: int = 8000, gamma: float | None = None) -> None:
        if int(n_components) != n_components or n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"gamma must be > 0 (or None for 'scale'), got {gamma}")
        self.n_components, self.gamma = int(n_components), gamma
        self.n_features = self.n_components

    def init(self, d: int, generator: torch.Generator, z: torch.Tensor | None = None) -> None:
        if self.gamma is None:
            var = float(z.var()) if z is not None and z.numel() > 1 else 1.0
            self.gamma = 1.0 / (d * max(var, 1e-12))
        scale = math.sqrt(2 * self.gamma)
        self.weight = scale * torch.randn(self.n_components, d, generator=generator)  # (D, d)
        self.offset = 2 * math.pi * torch.rand(self.n_components, generator=generator)  # (D,)

    def forward_vjp(self, z, w):
        angle = z @ self.weight.T + self.offset  # (batch, D)
        norm = math.sqrt(2.0 / self.n_components)
        phi = norm * torch.cos(angle)
        if w is None:
            return phi, None
        return phi, (-norm * torch.sin(angle) * w) @ self.weight

    def config(self):
        return {"kind": self.kind, "n_components": self.n_components, "gamma": self.gamma}

    def buffers(self):
        return {"weight": self.weight, "offset": self.offset}


class Identity(FeatureMap):
    """``phi(z) = z``: a linear barrier."""

    kind = "linear"

    def init(self, d: int, generator: torch.Generator, z: torch.Tensor | None = None) -> None:
        self.n_features = d

    def forward_vjp(self, z, w):
        return z, (None if w is None else w.expand_as(z))

    def config(self):
        return {"kind": self.kind, "n_features": getattr(self, "n_features", None)}

    def buffers(self):
        return {}


FEATURE_MAPS: dict[str, type[FeatureMap]] = {
    cls.kind: cls for cls in (TensorSketch, RandomFourier, Identity)
}


def feature_map_from_config(config: dict) -> FeatureMap:
    """Rebuild an un-initialised map from ``config()`` (buffers are loaded separately)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in FEATURE_MAPS:
        raise ValueError(f"unknown feature map {kind!r}; valid: {sorted(FEATURE_MAPS)}")
    if kind == "linear":
        fmap = Identity()
        fmap.n_features = config.get("n_features")
        return fmap
    return FEATURE_MAPS[kind](**config)

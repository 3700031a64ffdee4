"""The feature-map contract and the two simple maps: random Fourier features and the identity.

A ``FeatureMap`` maps (preprocessed) activations ``z`` to ``phi(z)`` and gives the pieces a
barrier needs without forming more than necessary (``value``, ``value_vjp``). The polynomial
TensorSketch, the default, is ``features.py``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

__all__ = ["FeatureMap", "Identity", "RandomFourier", "cache_key_matches", "version_of"]

# Rows per FFT pass of the TensorSketch: (rows, degree, D) blocks stay cache-sized. One FFT over a
# (4000, 8000) matrix is 3-4x slower per row on CPU (benchmarks/fit_speed.py).


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

    def value(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``phi(z) . w`` (batch,): what a barrier's value needs (maps may skip forming ``phi``)."""
        return self(z) @ w

    def value_vjp(self, z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``phi(z) . w`` (batch,) and ``J_phi(z)^T w`` (batch, d): what a barrier's gradient needs."""
        phi, grad = self.forward_vjp(z, w)
        return phi @ w, grad

    def config(self) -> dict:
        raise NotImplementedError

    def buffers(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # What ``buffers()`` holds, checked when a steerer file is loaded: each buffer's shape in the
    # names of ``dims(d)`` and its kind ("float": finite; "sign": +-1; "index": ints in [0, D)).
    buffer_spec: ClassVar[dict[str, tuple[tuple[str, ...], str]]] = {}

    def dims(self, d: int) -> dict[str, int]:
        """The sizes ``buffer_spec`` is written in, for input width ``d``; ``D``: features."""
        return {"d": d, "D": self.n_features}

    def load_buffers(self, buffers: dict[str, torch.Tensor]) -> None:
        for name, value in buffers.items():
            setattr(self, name, value)

    def to(self, device: torch.device | str) -> FeatureMap:
        for name, value in self.buffers().items():
            setattr(self, name, value.to(device))
        return self


def version_of(t: torch.Tensor) -> int:
    """In-place version counter; inference-mode tensors have none (cached by identity alone)."""
    return -1 if t.is_inference() else t._version


def cache_key_matches(a: tuple, b: tuple) -> bool:
    """Cache keys: tensors compared by identity (a held reference), versions by value."""
    return len(a) == len(b) and all(
        x is y if isinstance(x, torch.Tensor) else x == y for x, y in zip(a, b)
    )


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

    buffer_spec = {"weight": (("D", "d"), "float"), "offset": (("D",), "float")}

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

    def dims(self, d):
        return {"d": d, "D": d}

    def buffers(self):
        return {}

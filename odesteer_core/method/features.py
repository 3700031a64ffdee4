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

from odesteer_core.method.feature_maps import (
    FeatureMap,
    Identity,
    RandomFourier,
    cache_key_matches,
    version_of,
)
from odesteer_core.method.kernels import linear

__all__ = ["FEATURE_MAPS", "FeatureMap", "Identity", "RandomFourier", "TensorSketch"]

# Rows per FFT pass of the TensorSketch: (rows, degree, D) blocks stay cache-sized. One FFT over a
# (4000, 8000) matrix is 3-4x slower per row on CPU (benchmarks/fit_speed.py).
_BLOCK_ROWS = 64


class TensorSketch(FeatureMap):
    """Polynomial-kernel TensorSketch of ``[sqrt(gamma) z, sqrt(coef0)]`` with ``degree`` factors.

    Speed notes (CPU, measured by ``benchmarks/fit_speed.py`` and ``benchmarks/steer_speed.py``):
    all ``degree`` CountSketches are built by one ``index_add_`` and transformed by one batched
    ``rfft``; large batches are processed ``_BLOCK_ROWS`` rows at a time, because FFTs over a
    (4000, 8000) matrix run 3-4x slower than over cache-sized blocks; ``rfft(w)`` and the hash
    tables are computed once and cached (keyed on the tensors themselves); ``value_vjp`` gets
    ``w . phi`` from the spectra (Parseval) instead of an inverse FFT of ``phi``.

    Degree 2, the default: ``w . phi(z)`` is exactly a quadratic form of ``z`` (``_quadratic``),
    so ``value`` and ``value_vjp`` are one matrix product instead of two FFT passes and about
    twenty small ops: a 10-step steer of one row at d = 768 runs 2.7x faster on CPU
    (``benchmarks/steer_speed.py --d 768 --batch 1``). Used while d is at most
    ``quadratic_max_d`` (CPU: 2048, a 16 MiB matrix, where one matrix product still beats the FFTs)
    or ``quadratic_max_d_gpu`` (8192: on a GPU the FFT path's two dozen kernel launches cost more
    than reading a 256 MiB matrix; not yet measured, no GPU was lent). The FFT path serves wider
    models and ``phi``.
    """

    kind = "tensor_sketch"
    quadratic_max_d: ClassVar[int] = 2048
    quadratic_max_d_gpu: ClassVar[int] = 8192

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

    # -- cached derived tensors (rebuilt whenever a buffer or w is replaced or changed in place) --
    def _tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cached hash tables for the ``d`` input coordinates (the constant column folded out).

        Returns bucket indices offset per factor (degree * d,), signs times ``sqrt(gamma)``
        (degree, d), and the sketch of the constant column alone (degree * D,): every row's sketch
        starts from it.
        """
        key = (
            self.index_hash,
            version_of(self.index_hash),
            self.sign_hash,
            version_of(self.sign_hash),
        )
        cached = getattr(self, "_tables_cache", None)
        if cached is None or not cache_key_matches(cached[0], key):
            D, d = self.n_components, self.index_hash.shape[1] - (1 if self.coef0 > 0 else 0)
            offsets = D * torch.arange(self.degree, device=self.index_hash.device)[:, None]
            buckets = self.index_hash + offsets  # (degree, n_in)
            constant = self.sign_hash.new_zeros(self.degree * D)
            if self.coef0 > 0:
                constant[buckets[:, d]] = math.sqrt(self.coef0) * self.sign_hash[:, d]
            tables = (buckets[:, :d].reshape(-1), math.sqrt(self.gamma) * self.sign_hash[:, :d])
            cached = (key, (*tables, constant))
            self._tables_cache = cached
        return cached[1]

    def _weight_spectra(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rfft(w)`` (K,) and the real vector ``v`` (2K,) with ``w . irfft(P) = view_as_real(P) . v``."""
        key = (w, version_of(w))
        cached = getattr(self, "_w_cache", None)
        if cached is None or not cache_key_matches(cached[0], key):
            D = self.n_components
            spectrum = torch.fft.rfft(w, dim=0)  # (K,), K = D // 2 + 1
            # Parseval for real signals: bins 1..ceil(D/2)-1 stand for two conjugate bins.
            weight = torch.full((len(spectrum),), 2.0 / D, dtype=w.dtype, device=w.device)
            weight[0] = 1.0 / D
            if D % 2 == 0:
                weight[-1] = 1.0 / D
            v = torch.view_as_real(spectrum * weight).reshape(-1)  # Re P Re W + Im P Im W
            cached = (key, (spectrum, v))
            self._w_cache = cached
        return cached[1]

    def _quadratic(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Degree 2: ``(K (d, d) symmetric, k (d,), c)`` with ``w . phi(z) = z.K z / 2 + k.z + c``.

        ``phi`` is the circular convolution of the two CountSketches ``s_j = sum_a sigma_j(a)
        u_a e_{h_j(a)}`` of ``u = [sqrt(gamma) z, sqrt(coef0)]``, so ``w . phi = sum_n w_n
        sum_m s_1[m] s_2[n - m] = u.A u`` with ``A_ab = sigma_1(a) sigma_2(b) w[(h_1(a) +
        h_2(b)) mod D]``. With ``B = A + A^T`` scaled by the ``sqrt(gamma)`` / ``sqrt(coef0)``
        factors: ``K = B[:d, :d]``, ``k = B[:d, d]``, ``c = B[d, d] / 2``. Cached per ``w``.
        """
        key = (w, version_of(w), self.index_hash, version_of(self.index_hash))
        key += (self.sign_hash, version_of(self.sign_hash))
        cached = getattr(self, "_quadratic_cache", None)
        if cached is None or not cache_key_matches(cached[0], key):
            D, n_in = self.n_components, self.index_hash.shape[1]
            d = n_in - (1 if self.coef0 > 0 else 0)
            scale = torch.full((n_in,), math.sqrt(self.gamma), dtype=w.dtype, device=w.device)
            scale[d:] = math.sqrt(self.coef0)  # the constant column, if any
            (h1, h2), (s1, s2) = self.index_hash, self.sign_hash.to(w.dtype)
            A = w[(h1[:, None] + h2[None, :]) % D] * (s1 * scale)[:, None] * (s2 * scale)
            B = A + A.T
            zero = torch.zeros(d, dtype=w.dtype, device=w.device)
            k, c = (B[:d, d], 0.5 * float(B[d, d])) if n_in > d else (zero, 0.0)
            cached = (key, (B[:d, :d].contiguous(), k.contiguous(), c))
            self._quadratic_cache = cached
        return cached[1]

    def quadratic_form(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float] | None:
        """``(K, k, c)`` with ``w . phi(z) = z.K z / 2 + k.z + c`` where the quadratic form
        applies (degree 2, d within ``quadratic_max_d`` on CPU or ``quadratic_max_d_gpu``), else
        None. Cached per ``w``: the same tuple object while ``w`` and the hashes are unchanged."""
        d = self.index_hash.shape[1] - (1 if self.coef0 > 0 else 0)
        limit = self.quadratic_max_d if w.device.type == "cpu" else self.quadratic_max_d_gpu
        return self._quadratic(w) if self.degree == 2 and d <= limit else None

    def _quadratic_value_vjp(self, z: torch.Tensor, w: torch.Tensor):
        K, k, c = self._quadratic(w)
        K, k = K.to(z.dtype), k.to(z.dtype)
        grad = linear(z, K, k)  # K z + k per row (K symmetric); oneDNN on CPU
        return 0.5 * (z * (grad + k)).sum(1) + c, grad

    # -- the map and its vector-Jacobian product ---------------------------------------------
    def _spectra(self, z: torch.Tensor) -> torch.Tensor:
        """rfft of every factor's CountSketch of ``[sqrt(gamma) z, sqrt(coef0)]``: (m, degree, K)."""
        index, scaled_sign, constant = self._tables()
        m, D = z.shape[0], self.n_components
        source = (z.unsqueeze(1) * scaled_sign).reshape(m, -1)  # (m, degree * d)
        sketch = constant.to(source.dtype).expand(m, -1).clone()  # (m, degree * D)
        sketch.index_add_(1, index, source)
        return torch.fft.rfft(sketch.view(m, self.degree, D), dim=2)

    def _block(
        self,
        z: torch.Tensor,
        w: torch.Tensor | None,
        value: bool,
        vjp: bool,
        out: torch.Tensor | None = None,
    ):
        """One block of rows: (``phi`` (m, D), into ``out`` if given, or ``w . phi`` (m,); ``J^T w``
        (m, d) or None)."""
        D, degree, m = self.n_components, self.degree, z.shape[0]
        spectra = self._spectra(z)  # (m, degree, K)
        product = spectra[:, 0]
        for k in range(1, degree):
            product = product * spectra[:, k]
        if value:  # w . phi straight from the spectrum (Parseval): a dot product, no irfft
            first = torch.view_as_real(product).reshape(m, -1) @ self._weight_spectra(w)[1]
        else:
            first = torch.fft.irfft(product, n=D, dim=1, out=out)
        if not vjp:
            return first, None
        # d(w . conv(s_1..s_p)) / d s_k = correlation of w with the other factors' convolution:
        # irfft(rfft(w) * conj(prod_{l != k} rfft(s_l))); then back through the CountSketch.
        w_spectrum = self._weight_spectra(w)[0]
        conj = spectra.conj()
        if degree == 1:
            others = w_spectrum.expand_as(spectra)
        elif degree == 2:
            others = conj.flip(1) * w_spectrum
        else:
            rest = [
                torch.stack([conj[:, j] for j in range(degree) if j != k], 1).prod(1)
                for k in range(degree)
            ]
            others = torch.stack(rest, dim=1) * w_spectrum
        g_sketch = torch.fft.irfft(others, n=D, dim=2).reshape(m, -1)  # (m, degree * D)
        index, scaled_sign, _ = self._tables()
        grad = g_sketch.index_select(1, index).view(m, degree, -1)
        return first, (grad * scaled_sign).sum(1)  # (m, d)

    def _run(self, z: torch.Tensor, w: torch.Tensor | None, value: bool, vjp: bool):
        """``_block`` over row blocks on CPU; one block on GPUs or when autograd tracks ``z``.

        ``w . phi`` with or without its VJP comes from the quadratic form when it applies."""
        limit = self.quadratic_max_d if z.device.type == "cpu" else self.quadratic_max_d_gpu
        if value and self.degree == 2 and z.shape[1] <= limit:
            h, grad = self._quadratic_value_vjp(z, w)
            return h, grad if vjp else None
        m = z.shape[0]
        if (
            m <= _BLOCK_ROWS
            or z.device.type != "cpu"
            or (z.requires_grad and torch.is_grad_enabled())
        ):
            return self._block(z, w, value, vjp)
        first = z.new_empty(m) if value else z.new_empty(m, self.n_components)
        grad = z.new_empty(z.shape) if vjp else None
        for i in range(0, m, _BLOCK_ROWS):
            rows = slice(i, i + _BLOCK_ROWS)
            f, g = self._block(z[rows], w, value, vjp, out=None if value else first[rows])
            if value:
                first[rows] = f
            if vjp:
                grad[rows] = g
        return first, grad

    def forward_vjp(self, z, w):
        return self._run(z, w, value=False, vjp=w is not None)

    def value(self, z, w):
        return self._run(z, w, value=True, vjp=False)[0]

    def value_vjp(self, z, w):
        return self._run(z, w, value=True, vjp=True)

    def config(self):
        return {
            "kind": self.kind,
            "degree": self.degree,
            "n_components": self.n_components,
            "gamma": self.gamma,
            "coef0": self.coef0,
        }

    buffer_spec = {
        "index_hash": (("degree", "n_in"), "index"),
        "sign_hash": (("degree", "n_in"), "sign"),
    }

    def dims(self, d):
        n_in = d + (1 if self.coef0 > 0 else 0)  # the constant column, as in ``init``
        return {**super().dims(d), "degree": self.degree, "n_in": n_in}

    def buffers(self):
        return {"index_hash": self.index_hash, "sign_hash": self.sign_hash}


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

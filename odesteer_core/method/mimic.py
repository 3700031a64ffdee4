"""MiMiC: the affine optimal-transport map between the Gaussian fits of the two classes.

Singh et al., "Representation Surgery: Theory and Practice of Affine Steering" (ICML 2024,
arXiv 2402.09631), the baseline of the ODESteer paper's experiments. Fit a Gaussian to each
class and transport the negative one onto the positive one with the Bures-Wasserstein map

    M(a) = mu+ + A (a - mu-),   A = S-^{-1/2} (S-^{1/2} S+ S-^{1/2})^{1/2} S-^{-1/2},

the unique affine map that is optimal for the squared Euclidean cost and sends N(mu-, S-) to
N(mu+, S+) exactly (``A S- A = S+``). This is the *full-covariance* map, as POT's
``ot.da.LinearTransport`` computes it in the authors' code; Linear-AcT (``directions.py``) is its
per-dimension (diagonal) special case.

As a field (docs/method.md section 6): ``v(a) = M(a) - a`` and one Euler step, so ``T = 1``
transports fully and ``T = 0`` is the identity; strengths in between move along the straight
line to ``M(a)``, as Linear-AcT's ``lambda``. The authors' code applies ``M`` at ``T = 1`` only
to rows its logistic-regression gate calls negative; that gate is left out here (every row is
moved), so that ``T`` means the same for every method.

Covariances are regularised before the square roots, which needs them positive definite (with
fewer samples than dimensions they are singular): shrinkage towards the scaled identity,
``(1 - s) S + s (tr S / d) I``, plus POT's ridge ``reg I``. The square roots are computed in
float64 by symmetric eigendecomposition on the data's device.
"""

from __future__ import annotations

import torch

from odesteer_core.method.base import Steerer

__all__ = ["MiMiC"]


def _sym_power(matrix: torch.Tensor, power: float) -> torch.Tensor:
    """``matrix ** power`` of a symmetric positive semi-definite matrix (eigenvalues >= 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    values = values.clamp_min(0.0) if power > 0 else values.clamp_min(1e-12)
    return (vectors * values.pow(power)) @ vectors.T


def _covariance(x: torch.Tensor, shrinkage: float, reg: float) -> torch.Tensor:
    """Sample covariance (float64) shrunk towards ``(tr S / d) I``, plus ``reg I``."""
    centred = x - x.mean(0)
    cov = centred.T @ centred / max(len(x) - 1, 1)
    d = cov.shape[0]
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    return (1.0 - shrinkage) * cov + (shrinkage * cov.trace() / d + reg) * eye


def gaussian_ot_matrix(cov_source: torch.Tensor, cov_target: torch.Tensor) -> torch.Tensor:
    """``A`` with ``A cov_source A = cov_target``: the linear part of the Gaussian OT map."""
    root = _sym_power(cov_source, 0.5)
    inv_root = _sym_power(cov_source, -0.5)
    middle = _sym_power(root @ cov_target @ root, 0.5)
    matrix = inv_root @ middle @ inv_root
    return (matrix + matrix.T) / 2  # symmetric in exact arithmetic


class MiMiC(Steerer):
    """MiMiC: ``v(a) = M(a) - a`` with the Gaussian optimal-transport map ``M`` (neg -> pos).

    Args:
        shrinkage: Weight in [0, 1) of the scaled identity in each regularised covariance.
        reg: Ridge added to each covariance's diagonal (POT's ``reg``, the authors' 1e-2).
        seed: Unused (the fit is deterministic); kept for the common constructor.
    """

    name = "mimic"
    tensor_shapes = {"matrix_": ("d", "d"), "offset_": ("d",)}

    def __init__(self, *, shrinkage: float = 0.1, reg: float = 1e-2, seed: int = 0) -> None:
        super().__init__(seed=seed)
        for label, value in (("shrinkage", shrinkage), ("reg", reg)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{label} must be a number, got {value!r}")
        if not 0.0 <= shrinkage < 1.0:
            raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage!r}")
        if not reg >= 0.0:
            raise ValueError(f"reg must be >= 0, got {reg!r}")
        self.shrinkage, self.reg = float(shrinkage), float(reg)

    def _fit(self, pos, neg):
        pos64, neg64 = pos.double(), neg.double()
        cov_neg = _covariance(neg64, self.shrinkage, self.reg)
        cov_pos = _covariance(pos64, self.shrinkage, self.reg)
        matrix = gaussian_ot_matrix(cov_neg, cov_pos)  # (d, d), symmetric
        self.matrix_ = matrix.float()
        self.offset_ = (pos64.mean(0) - matrix @ neg64.mean(0)).float()  # M(a) = A a + offset

    def transport(self, x: torch.Tensor) -> torch.Tensor:
        """``M(x)`` for float32 (B, d) ``x`` on the steerer's device."""
        return x @ self.matrix_ + self.offset_  # A is symmetric: x A = (A x^T)^T

    def velocity(self, x):
        return self.transport(x) - x

    def _speed(self, neg):
        return float(self.velocity(neg).norm(dim=1).median().clamp_min(1e-12))

    def _tensors(self):
        return {"matrix_": self.matrix_, "offset_": self.offset_}, {}

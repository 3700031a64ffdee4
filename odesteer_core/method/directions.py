"""One-step methods along a fixed field: CAA, RepE and Linear-AcT.

Each takes one Euler step ``a + T v(a)`` (the paper's section on baselines): CAA and RepE move
along one constant direction, Linear-AcT along the per-dimension affine transport map.
"""

from __future__ import annotations

import torch

from odesteer_core.method.base import Steerer

__all__ = ["CAA", "LinearAcT", "RepE"]


class _DirectionSteerer(Steerer):
    """A constant field ``v`` stored in ``direction_``."""

    tensor_shapes = {"direction_": ("d",)}

    def velocity(self, x):
        return self.direction_.expand_as(x)

    def _tensors(self):
        return {"direction_": self.direction_}, {}


class CAA(_DirectionSteerer):
    """Contrastive activation addition: ``v = mean(pos) - mean(neg)`` (not normalised)."""

    name = "caa"

    def _fit(self, pos, neg):
        self.direction_ = pos.mean(0) - neg.mean(0)

    def _speed(self, neg):
        return float(self.direction_.norm())


class RepE(_DirectionSteerer):
    """First principal direction of paired differences ``pos_i - neg_i``, sign aligned with CAA.

    Uncentred, which equals RepE's PCA on randomly sign-flipped pairs. Unequal class sizes are
    paired by a seeded random permutation.
    """

    name = "repe"

    def _fit(self, pos, neg):
        n = min(len(pos), len(neg))
        if len(pos) != len(neg):
            g = torch.Generator().manual_seed(self.seed)
            pos = pos[torch.randperm(len(pos), generator=g)[:n].to(pos.device)]
            neg = neg[torch.randperm(len(neg), generator=g)[:n].to(neg.device)]
        diffs = (pos - neg).double()  # (n, d); float64 SVD: stable for d in the thousands
        direction = torch.linalg.svd(diffs, full_matrices=False).Vh[0].float()
        if direction.dot(pos.mean(0) - neg.mean(0)) < 0:
            direction = -direction
        self.direction_ = direction


class LinearAcT(Steerer):
    """Linear-AcT: per-dimension affine transport ``M(a) = mu+ + (sd+ / sd-) (a - mu-)``.

    ``v(a) = M(a) - a``; one Euler step with ``T = 1`` transports fully.
    """

    name = "linear_act"
    tensor_shapes = {"slope_": ("d",), "offset_": ("d",)}

    def _fit(self, pos, neg):
        std_pos, std_neg = pos.std(0), neg.std(0).clamp_min(1e-6)
        self.slope_ = std_pos / std_neg
        self.offset_ = pos.mean(0) - self.slope_ * neg.mean(0)

    def velocity(self, x):
        return self.slope_ * x + self.offset_ - x

    def _speed(self, neg):
        return float(self.velocity(neg).norm(dim=1).median().clamp_min(1e-12))

    def _tensors(self):
        return {"slope_": self.slope_, "offset_": self.offset_}, {}

"""Does a barrier's flow land negatives inside the positive cloud? A check by nearest neighbours.

Cross-validated log-loss says how well a barrier *classifies*; steering also needs its *field* to
lead somewhere good. Two barriers can classify equally well and flow differently: on a concept
whose positives sit inside a shell of negatives, a polynomial barrier's normalised gradient keeps
pushing after the centre is reached and drifts outwards along directions the classes share,
while an RBF barrier's flow settles among the positives (``benchmarks/synthetic_quality.py``,
configuration "nested"). Selection (``selection.py``) uses this module to break near-ties in
log-loss between its finalists.

The judge is nonparametric, so it favours no barrier family: with ``r+(x)`` / ``r-(x)`` the
distance from ``x`` to its ``k``-th nearest positive / negative reference activation (equal-size
reference sets), ``x`` is *inside the positive cloud* when ``r+(x) < r-(x)`` (the k-NN density
ratio favours the positives) and ``r+(x)`` is at most the ``TYPICAL_QUANTILE`` of ``r+`` over
held-out positives (as close to the positives as a typical positive). ``landing_hits`` integrates
unit-speed fields from held-out negatives and judges every row at each point of the path;
``landing_shares`` does it for several barrier settings, fitted on the same training rows, pooled
over cross-validation folds. ``clearly_better`` compares two settings' landings row by row: the
same negatives flow under both fields, so the test is paired (McNemar's): only the rows one field
lands and the other does not count, and a difference must exceed two standard errors of theirs
and ``MIN_GAP`` of all rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from odesteer_core.method.barrier import make_barrier

__all__ = ["Cloud", "Landing", "clearly_better", "landing_hits", "landing_shares"]

MIN_GAP = 0.05  # shares closer than this never count as different
KNN = 5
TYPICAL_QUANTILE = 0.95
LANDING_STEPS = 16  # Euler steps of the checked flow, each point judged
LANDING_REACH = 1.5  # ... over 1.5x the median distance from a negative to the positive mean


@dataclass
class Cloud:
    """The positive cloud as reference activations: ``inside(x)`` per row (see module doc)."""

    pos_ref: torch.Tensor  # (m, d)
    neg_ref: torch.Tensor  # (m, d)
    radius: float  # TYPICAL_QUANTILE of held-out positives' k-th neighbour distance

    @classmethod
    def build(cls, pos_ref, neg_ref, pos_val, generator: torch.Generator) -> Cloud:
        """References subsampled (seeded) to the smaller class's size, so that ``r+ < r-``
        compares densities; ``radius`` from the held-out positives ``pos_val``."""
        m = min(len(pos_ref), len(neg_ref))
        pick = lambda a: a[torch.randperm(len(a), generator=generator)[:m].to(a.device)]  # noqa: E731
        pos_ref, neg_ref = pick(pos_ref), pick(neg_ref)
        k = min(KNN, m)
        r = torch.cdist(pos_val, pos_ref).kthvalue(k, dim=1).values
        return cls(pos_ref, neg_ref, float(torch.quantile(r, TYPICAL_QUANTILE)))

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        k, m = min(KNN, len(self.pos_ref)), len(self.pos_ref)
        if not hasattr(self, "_refs"):
            self._refs = torch.cat([self.pos_ref, self.neg_ref])
        dist = torch.cdist(x, self._refs).view(len(x), 2, m)  # one call for both classes
        r_pos, r_neg = dist.kthvalue(k, dim=2).values.unbind(1)
        return (r_pos < r_neg) & (r_pos <= self.radius)


def landing_hits(
    velocities: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    x0: torch.Tensor,
    cloud: Cloud,
    dt: float,
) -> torch.Tensor:
    """Whether each of ``x0``'s rows is inside ``cloud`` at each of the ``LANDING_STEPS + 1``
    points of the unit-speed Euler flow (step ``dt``) of each field in ``velocities``: a bool
    (len(velocities), LANDING_STEPS + 1, len(x0)) tensor, start point first. The fields move
    together, so each point of the path is judged by one neighbour search for all of them."""
    K, n = len(velocities), len(x0)
    x = x0.expand(K, *x0.shape).clone()  # (K, n, d)
    hits = [cloud.inside(x0).expand(K, n)]
    for _ in range(LANDING_STEPS):
        for k, velocity in enumerate(velocities):
            x[k] += dt * velocity(x[k])
        hits.append(cloud.inside(x.view(K * n, -1)).view(K, n))
    return torch.stack(hits, 1).cpu()


@dataclass(frozen=True)
class Landing:
    """One barrier's landing: the share of the negatives inside at the best point of the path,
    the distance moved there, and which rows are inside there (``hits``, (n,) bool)."""

    share: float
    distance: float
    hits: torch.Tensor


def clearly_better(a: Landing, b: Landing) -> bool:
    """Whether ``a`` lands clearly more of the same negatives than ``b`` (paired test)."""
    gained = int((a.hits & ~b.hits).sum())
    lost = int((b.hits & ~a.hits).sum())
    diff = gained - lost
    return diff >= MIN_GAP * len(a.hits) and diff > 2 * math.sqrt(gained + lost)


def landing_shares(
    X: torch.Tensor,
    y: torch.Tensor,
    fold: torch.Tensor,
    folds: list[int],
    settings: dict,
    coef0: float,
    seed: int,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> dict:
    """For each ``settings[key]`` (barrier settings) and each held-out fold ``f`` of ``folds``:
    a barrier fitted on the rows of ``X`` outside ``f`` (``y``: 1 positive, 0 negative) flows the
    negatives of ``f``, judged by the cloud of the rows outside ``f``. Returns ``{key:
    Landing}``, the rows of all ``folds`` pooled (the best point of the path is that of the
    pooled share). ``max_iter`` and ``tol`` are the logistic fit's."""
    pos = (y > 0).to(X.device)
    fold = fold.to(X.device)
    start_all = X[~pos & torch.isin(fold, torch.tensor(folds, device=X.device))]
    reach = LANDING_REACH * float((start_all - X[pos].mean(0)).norm(dim=1).median())
    dt = reach / LANDING_STEPS
    hits: dict = {key: [] for key in settings}
    generator = torch.Generator().manual_seed(seed)
    for f in folds:
        held = fold == f
        train_pos, train_neg = X[~held & pos], X[~held & ~pos]
        cloud = Cloud.build(train_pos, train_neg, X[held & pos], generator)
        fields = []
        for setting in settings.values():
            barrier = make_barrier(setting, coef0, seed, max_iter)
            barrier.tol = tol
            barrier.fit(train_pos, train_neg)
            fields.append(lambda x, b=barrier: _unit(b.value_and_grad(x)[1]))
        for key, h in zip(settings, landing_hits(fields, X[held & ~pos], cloud, dt)):
            hits[key].append(h)
    out = {}
    for key, parts in hits.items():
        path = torch.cat(parts, 1)  # (steps + 1, n): every fold's negatives
        best = int(path.sum(1).argmax())
        out[key] = Landing(float(path[best].float().mean()), best * dt, path[best])
    return out


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)

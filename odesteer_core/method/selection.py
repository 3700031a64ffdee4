"""Choose a barrier's feature map and settings by k-fold cross-validation on the concept's data.

Candidates (``SearchSpace``): the linear map (``Identity``, which stands for degree 1) and
TensorSketch degrees 2-4, each with ``gamma`` from ``GAMMAS``, centring on and off, features of
the direction ``(a - mu) / |a - mu|`` (normalised, the paper's) or of ``a - mu`` itself (which
lets the flow change the radius: a concept whose positives sit inside a shell of negatives needs
it), and ``C`` from ``C_GRID``; only the settings the user left unset are searched
(``BarrierOptions``).
Score: pooled out-of-fold log-loss. The search is built to cost less than one fit of the paper's
scikit-learn recipe on the same data (``benchmarks/fit_speed.py``):

- features are computed once per (map, degree, gamma, centring, normalisation) on at most
  ``SEARCH_ROWS_PER_CLASS`` rows per class, with a ``SEARCH_COMPONENTS``-component sketch of the
  same kernel (the winner is refitted at full size on all rows by the caller);
- every (feature set, fold, C) problem of a stage is one batched L-BFGS run
  (``logistic.fit_logistic_batched``): two batched matrix products per evaluation;
- stage 1 scores every feature set on the first fold only, the batch with the most sets first
  (one batch per feature width); every few iterations a set whose held-out loss at its current
  iterate is far behind the best so far (``EARLY_STOP_MARGIN``) stops fitting; at the end sets
  worse than the best by more than ``PRUNE_MARGIN`` are dropped, and at most ``MAX_SURVIVORS``
  go on to the other folds;
- among the fully scored candidates the simplest within one standard error of the best wins
  (the "one-SE rule"; linear < degree 2 < 3 < 4, then normalised, then the smaller C), so
  near-ties do not buy complexity; the simplest such set on the first fold always survives the
  pruning;
- the flow check (``landing.py``): the near-ties and each family's best set flow held-out
  negatives, and the one-SE winner gives way to the simplest contender that lands clearly more
  of them in the positive cloud (a paired test; when the first fold shows a gap, it is decided
  on three folds' negatives).

Everything runs on the data's device; fold assignment, subsampling and sketch hashes come from
CPU generators seeded by ``seed``, so a selection is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from odesteer_core.method.calibration import (
    CalibrationReport,
    calibration_metrics,
    chance_warning,
    describe,
)
from odesteer_core.method.features import Identity, RandomFourier, TensorSketch
from odesteer_core.method.landing import MIN_GAP, Landing, clearly_better, landing_shares
from odesteer_core.method.logistic import fit_logistic_batched

__all__ = ["SearchSpace", "select_barrier"]

DEGREES = (2, 3, 4)
GAMMAS = (0.1, 1.0, 4.0)
C_GRID = (0.1, 1.0, 10.0)
MAX_FOLDS = 5
SEARCH_COMPONENTS = 384
SEARCH_ROWS_PER_CLASS = 300
PRUNE_MARGIN = (0.1, 0.02)  # drop a set when its fold-1 loss > best * (1 + 0.1) + 0.02
EARLY_STOP_MARGIN = (0.25, 0.05)  # during fold 1, stop fitting a set beyond this (wider) margin
MAX_SURVIVORS = 3
LANDING_FOLDS = 3  # the flow check decides a switch on this many fold splits
LANDING_MIN_ROWS = 20  # per class: below this the flow check is skipped (and says so)
CONTENDER_MARGIN = (0.25, 0.05)  # flow check: each family's best set within this margin of the best
SEARCH_TOL, SEARCH_MAX_ITER = 1e-3, 200


@dataclass(frozen=True)
class SearchSpace:
    """The candidate values of each barrier setting (one value: fixed) and what was searched."""

    features: tuple[str, ...] = ("linear", "tensor_sketch", "random_fourier")
    degrees: tuple[int, ...] = DEGREES
    gammas: tuple[float | None, ...] = GAMMAS
    centers: tuple[bool, ...] = (True, False)
    Cs: tuple[float, ...] = C_GRID
    normalizes: tuple[bool, ...] = (True, False)
    coef0: float = 1.0
    n_components: int = 8000
    searched: tuple[str, ...] = ("features", "degree", "gamma", "center", "normalize", "C")
    folds: int = MAX_FOLDS
    notes: list[str] = field(default_factory=list)

    def feature_sets(self) -> list[tuple[str, int | None, float | None, bool, bool]]:
        """(features, degree, gamma, center, normalize), simplest first."""
        out = []
        for center in self.centers:
            for norm in self.normalizes:
                for kind in self.features:
                    if kind == "linear":
                        out.append(("linear", None, None, center, norm))
                    elif kind == "random_fourier":
                        if not center and not norm and True in self.centers:
                            continue  # the RBF kernel of a - mu is that of a: same as centred
                        out.extend(("random_fourier", None, g, center, norm) for g in self.gammas)
                    else:
                        for degree in self.degrees:
                            out.extend(
                                ("tensor_sketch", degree, g, center, norm) for g in self.gammas
                            )
        return sorted(out, key=lambda s: (_complexity(s), not s[4], not s[3]))


def kernel_scale(fs: tuple, space: SearchSpace) -> float:
    """``k(z, z)`` for a unit ``z``: the searched C grid is in units of it (``C / k(z, z)``), so
    that a high-degree kernel's larger features do not win by being less regularised."""
    kind, degree, gamma, _, _ = fs
    if "C" not in space.searched or kind != "tensor_sketch":
        return 1.0
    return (gamma + space.coef0) ** degree


def _complexity(fs: tuple) -> tuple:
    kind, degree, gamma, _, _ = fs
    rank = {"linear": 1, "tensor_sketch": degree or 2, "random_fourier": 5}[kind]
    return rank, gamma or 0.0


def _folds(y: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Stratified fold index per row: each class permuted, then dealt round-robin."""
    fold = torch.empty(len(y), dtype=torch.long)
    for label in (1, 0):
        idx = torch.nonzero(y == label).flatten()
        perm = idx[torch.randperm(len(idx), generator=generator)]
        fold[perm] = torch.arange(len(idx)) % k
    return fold


def _subsample(n_pos: int, n_neg: int, cap: int, generator: torch.Generator) -> torch.Tensor:
    """Row indices into ``cat([pos, neg])``: at most ``cap`` per class, seeded."""
    keep = []
    for start, count in ((0, n_pos), (n_pos, n_neg)):
        perm = torch.randperm(count, generator=generator)[: min(count, cap)]
        keep.append(start + perm.sort().values)
    return torch.cat(keep)


def _features(
    X: torch.Tensor, fs: tuple, space: SearchSpace, seed: int, cache: dict
) -> torch.Tensor:
    kind, degree, gamma, center, normalize = fs
    if (center, normalize) not in cache:  # as Barrier.fit preprocesses
        mu = X.mean(0) if center else torch.zeros_like(X[0])
        z = X - mu
        if normalize:
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            z = z / z.norm(dim=1).median().clamp_min(1e-12)
        cache[center, normalize] = z
    z = cache[center, normalize]
    if kind == "linear":
        fmap = Identity()
    elif kind == "random_fourier":
        fmap = RandomFourier(min(space.n_components, SEARCH_COMPONENTS), gamma)
    else:
        fmap = TensorSketch(degree, min(space.n_components, SEARCH_COMPONENTS), gamma, space.coef0)
    fmap.init(z.shape[1], torch.Generator().manual_seed(seed), z.cpu())
    return fmap.to(z.device)(z)


def _hopeless(X: torch.Tensor, y: torch.Tensor, masks: torch.Tensor, n_C: int, best: list):
    """A ``prune`` callback for the batched fit: True for the feature sets whose held-out loss at
    the current iterate (mean over folds, best C) is above ``EARLY_STOP_MARGIN`` of the best one
    so far (``best[0]``, updated: it carries over from earlier batches)."""
    held = (masks == 0).any(0)  # rows held out by some problem
    X_val, y_val = X[:, held], y[held].float()
    weight = (masks[:, held] == 0).float()
    weight = (weight / weight.sum(1, keepdim=True)).T  # (n_val, Q)

    def prune(params: torch.Tensor) -> torch.Tensor:
        logits = torch.bmm(X_val, params[..., :-1].transpose(1, 2)) + params[..., -1][:, None]
        bce = F.binary_cross_entropy_with_logits(
            logits, y_val[None, :, None].expand_as(logits), reduction="none"
        )
        per_set = (bce * weight).sum(1).view(len(X), -1, n_C).mean(1).amin(1)  # (G,)
        best[0] = min(best[0], float(per_set.min()))
        return per_set > best[0] * (1 + EARLY_STOP_MARGIN[0]) + EARLY_STOP_MARGIN[1]

    return prune


def _oof_logits(
    phi: list[torch.Tensor],
    y: torch.Tensor,
    fold: torch.Tensor,
    folds: list[int],
    Cs: list,
    best: list | None = None,
) -> torch.Tensor:
    """Held-out logits (G, len(Cs), n) for the rows of ``folds`` (others NaN), batched; with
    ``best`` (a one-element list: the best held-out loss seen so far), hopeless sets stop early."""
    X = torch.stack(phi)  # (G, n, D)
    n = X.shape[1]
    masks = torch.stack([fold != f for f in folds for _ in Cs[0]]).to(X.device)  # (Q, n)
    l2 = torch.tensor(
        [[1.0 / (C * float((fold != f).sum())) for f in folds for C in c] for c in Cs]
    )
    prune = None if best is None else _hopeless(X, y, masks, len(Cs[0]), best)
    params = fit_logistic_batched(
        X, y, masks, l2, max_iter=SEARCH_MAX_ITER, tol=SEARCH_TOL, prune=prune
    )
    logits = torch.bmm(X, params[..., :-1].transpose(1, 2)) + params[..., -1][:, None, :]
    out = torch.full((len(phi), len(Cs[0]), n), math.nan, device=X.device)
    nC = len(Cs[0])
    for i, f in enumerate(folds):
        val = (fold == f).to(X.device)
        out[:, :, val] = logits[:, val][:, :, i * nC : (i + 1) * nC].transpose(1, 2)
    return out


def select_barrier(
    pos: torch.Tensor, neg: torch.Tensor, space: SearchSpace, seed: int = 0
) -> CalibrationReport:
    """Cross-validate the candidates of ``space`` on ``pos``/``neg``; the report names the winner.

    ``report.chosen`` holds the settings to refit with at full size; its held-out numbers are the
    winner's out-of-fold predictions.
    """
    notes = list(space.notes)
    generator = torch.Generator().manual_seed(seed)
    rows = _subsample(len(pos), len(neg), SEARCH_ROWS_PER_CLASS, generator)
    X = torch.cat([pos, neg]).float()[rows.to(pos.device)]
    y = (rows < len(pos)).float()
    if len(rows) < len(pos) + len(neg):
        notes.append(
            f"cross-validation on a seeded subsample of {SEARCH_ROWS_PER_CLASS} rows per class "
            f"(of {len(pos)} + {len(neg)})"
        )
    smallest = int(min(y.sum(), len(y) - y.sum()))
    k = min(space.folds, smallest)
    if k < space.folds:
        notes.append(
            f"{k}-fold instead of {space.folds}-fold cross-validation: the smaller class has "
            f"only {smallest} examples"
        )
    fold = _folds(y, k, generator)
    y_dev, fold_dev = y.to(X.device), fold.to(X.device)
    sets, cache = space.feature_sets(), {}
    phi = [_features(X, fs, space, seed, cache) for fs in sets]
    oof = torch.full((len(sets), len(space.Cs), len(y)), math.nan, device=X.device)
    n_folds = [0] * len(sets)

    def C_of(i: int, c: int) -> float:
        return space.Cs[c] / kernel_scale(sets[i], space)

    def run(which: list[int], folds: list[int], screen: bool = False) -> None:
        by_width: dict[int, list[int]] = {}
        for i in which:
            by_width.setdefault(phi[i].shape[1], []).append(i)
        best = [math.inf] if screen else None  # screening: hopeless sets stop early
        for group in sorted(by_width.values(), key=len, reverse=True):  # the largest batch first
            Cs = [[C_of(i, c) for c in range(len(space.Cs))] for i in group]
            got = _oof_logits([phi[i] for i in group], y_dev, fold_dev, folds, Cs, best)
            for j, i in enumerate(group):
                mask = torch.isnan(got[j, 0]).logical_not()
                oof[i][:, mask] = got[j][:, mask]
                n_folds[i] += len(folds)

    def losses(i: int, c: int) -> torch.Tensor:
        seen = torch.isnan(oof[i, c]).logical_not()
        return F.binary_cross_entropy_with_logits(oof[i, c][seen], y_dev[seen], reduction="none")

    def loss(i: int, c: int) -> float:
        return float(losses(i, c).mean())

    def within_one_se(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The (set, C) pairs within one standard error of the best mean loss."""
        best = min(pairs, key=lambda ic: loss(*ic))
        rows = losses(*best)
        bar = float(rows.mean()) + float(rows.std()) / math.sqrt(max(len(rows), 1))
        return [ic for ic in pairs if loss(*ic) <= bar]

    def simplest(pairs: list[tuple[int, int]]) -> tuple[int, int]:
        return min(
            pairs,
            key=lambda ic: (_complexity(sets[ic[0]]), not sets[ic[0]][4], space.Cs[ic[1]], ic),
        )

    def one_se(pairs: list[tuple[int, int]]) -> tuple[int, int]:
        """The simplest (set, C) within one standard error of the best mean loss."""
        return simplest(within_one_se(pairs))

    def family_best(pairs: list[tuple[int, int]], bar: float) -> list[tuple[int, int]]:
        """Per feature family, its best (set, C) if within ``CONTENDER_MARGIN`` of ``bar``."""
        best: dict[str, tuple[int, int]] = {}
        for i, c in sorted(pairs, key=lambda ic: loss(*ic)):
            best.setdefault(sets[i][0], (i, c))
        limit = bar * (1 + CONTENDER_MARGIN[0]) + CONTENDER_MARGIN[1]
        return [ic for ic in best.values() if loss(*ic) <= limit]

    everything = list(range(len(sets)))
    if len(sets) > 1 and k > 1:  # stage 1: first fold only, then keep the promising sets
        run(everything, [0], screen=True)
        first = [min(loss(i, c) for c in range(len(space.Cs))) for i in everything]
        best = min(first)
        bar = best * (1 + PRUNE_MARGIN[0]) + PRUNE_MARGIN[1]
        ranked = sorted((v, i) for i, v in enumerate(first) if v <= bar)[:MAX_SURVIVORS]
        pairs = [(i, c) for i in everything for c in range(len(space.Cs))]
        keep = (
            {i for _, i in ranked} | {one_se(pairs)[0]} | {i for i, _ in family_best(pairs, best)}
        )
        run(sorted(keep), list(range(1, k)))
    else:
        run(everything, list(range(k)))
    full = [(i, c) for i in everything if n_folds[i] == k for c in range(len(space.Cs))]
    scores = {(i, c): loss(i, c) for i in everything for c in range(len(space.Cs))}
    tied = within_one_se(full)
    winner, landing = simplest(tied), {}
    contenders = {}  # feature set -> C: each near-tie's best C, and each family's best set
    for i, c in sorted(tied, key=lambda ic: loss(*ic)):
        contenders.setdefault(i, c)
    for i, c in family_best(full, bar=loss(*min(full, key=lambda ic: loss(*ic)))):
        contenders.setdefault(i, c)
    if len(contenders) > 1 and smallest < LANDING_MIN_ROWS:  # too few for neighbour judging
        notes.append(
            f"no flow check: it needs {LANDING_MIN_ROWS} examples of each class, the smaller "
            f"class has {smallest}"
        )
    elif len(contenders) > 1:  # which barrier's flow lands held-out negatives best?
        small = SearchSpace(n_components=min(space.n_components, SEARCH_COMPONENTS))
        chosen = {i: _settings(sets[i], C_of(i, c), small) for i, c in contenders.items()}

        def check(folds: list[int]) -> dict:
            return landing_shares(
                X, y_dev, fold, folds, chosen, space.coef0, seed, SEARCH_MAX_ITER, SEARCH_TOL
            )

        landing = check([0])
        if k > 1 and _promising(landing, winner[0]):  # decide on more held-out rows
            landing = check(list(range(min(k, LANDING_FOLDS))))
        top = _best(landing)
        if clearly_better(top, landing[winner[0]]):  # the simplest near-tie flows clearly worse
            landed = [i for i in contenders if not clearly_better(top, landing[i])]
            i = min(landed, key=lambda i: (_complexity(sets[i]), loss(i, contenders[i])))
            was = describe(chosen[winner[0]], with_C=False)
            notes.append(
                f"flow check: {describe(chosen[i], with_C=False)} brings {landing[i].share:.0%} "
                f"of held-out negatives into the positive cloud, {was} (the simplest of the best "
                f"log-losses) {landing[winner[0]].share:.0%}"
            )
            winner = (i, contenders[i])
    metrics = calibration_metrics(oof[winner], y)
    candidates = []
    for i in everything:
        for c in range(len(space.Cs)):
            row = {
                "settings": _settings(sets[i], C_of(i, c), space),
                "cv_log_loss": round(scores[(i, c)], 6),
                "folds": n_folds[i],
            }
            if contenders.get(i) == c and i in landing:
                row["landing"] = round(landing[i].share, 4)
            candidates.append(row)
    return CalibrationReport(
        **metrics,
        chosen=_settings(sets[winner[0]], C_of(*winner), space),
        searched=list(space.searched),
        candidates=candidates,
        n_folds=k,
        n_rows=len(y),
        notes=notes,
        warning=chance_warning(metrics["accuracy"], metrics["log_loss"]),
    )


def _best(landing: dict) -> Landing:
    """The landing of the contender whose flow lands the largest share."""
    return max(landing.values(), key=lambda got: got.share)


def _promising(landing: dict, simplest: int) -> bool:
    """Whether a switch is worth checking on more rows: some contender lands ``MIN_GAP`` more."""
    return _best(landing).share >= landing[simplest].share + MIN_GAP


def _settings(fs: tuple, C: float, space: SearchSpace) -> dict:
    kind, degree, gamma, center, normalize = fs
    return {
        "features": kind,
        "degree": degree,
        "gamma": gamma,
        "center": center,
        "normalize": normalize,
        "C": C,
        "n_components": None if kind == "linear" else space.n_components,
    }

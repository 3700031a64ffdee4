"""Every token's steering path in a fitted 2-D view: what the trajectory plots draw.

``project_comparison`` projects all ODESteer path points and one-step endpoints of a comparison in
one ``transform`` call, so moving the app's token slider only indexes precomputed arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np
import torch

from odesteer_core.method.checks import NotFittedError
from odesteer_core.view.base import Projector

if TYPE_CHECKING:
    from odesteer_core.lm.records import Comparison
    from odesteer_core.pipeline import FittedConcept

__all__ = ["ProjectedComparison", "project_comparison"]


@dataclass
class ProjectedComparison:
    """Everything the trajectory and barrier plots draw, precomputed for every token.

    Moving the token slider only indexes these arrays: no fit, no transform. Token ``i`` is the
    ODESteer arm's generated token ``i``; its path starts at the activation that predicted it.
    """

    projection: str  # registry name of the projector
    title: str  # e.g. "UMAP (approximate)"
    exact: bool  # linear view: coordinates are distances
    axis_titles: tuple[str, str]
    labels: tuple[str, str]  # the concept's positive and negative labels
    pos: np.ndarray  # (N, 2) float32
    neg: np.ndarray  # (M, 2) float32
    tokens: list[str] = field(default_factory=list)  # ODESteer arm's tokens
    T: float = 0.0  # ODESteer horizon (target mode: the most a token may move; most stop sooner)
    target: float | None = None  # target mode: the confidence each token was steered to
    paths: list[np.ndarray] = field(default_factory=list)  # per token (steps + 1, 2) float32
    path_barrier: list[np.ndarray] = field(default_factory=list)  # per token (steps + 1,) h
    # per token (steps + 1,): distance travelled along the path in activation space, which is
    # the flow time (the field has unit speed)
    path_length: list[np.ndarray] = field(default_factory=list)
    one_step_method: str | None = None
    one_step_end: np.ndarray | None = None  # (tokens, 2): one-step edit of each path's start
    one_step_barrier: np.ndarray | None = None  # (tokens,) h at those endpoints
    one_step_distance: np.ndarray | None = None  # (tokens,) how far the one-step edit moved
    arm_barriers: dict[str, np.ndarray] = field(default_factory=dict)  # arm -> (its tokens,) h
    arm_tokens: dict[str, list[str]] = field(default_factory=dict)
    arm_methods: dict[str, str | None] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return len(self.paths)

    def to_dict(self) -> dict:
        """JSON-able form (nested lists, 5 decimals, NaN as None), e.g. for the app's API."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return round(value, 5) if math.isfinite(value) else None
    return value


def project_comparison(
    projector: Projector, comparison: Comparison | None, fitted: FittedConcept
) -> ProjectedComparison:
    """Project every token's ODESteer path and one-step endpoint in ONE ``transform`` call.

    The one-step endpoint is recomputed from the ODESteer path's start (the arms' generations
    diverge, so the one-step arm's own activations differ after the first differing token), with
    the one-step arm's method and horizon, and scored by the concept's ODESteer barrier.

    Args:
        projector: A fitted projector, e.g. from ``fit_projector(name, fitted)``.
        comparison: The (possibly still streaming) comparison; None: nothing generated yet,
            the result holds the clouds only.
        fitted: The concept the comparison was steered with (its one-step steerer and barrier).

    Returns:
        Per-token 2-D paths, barrier values and one-step endpoints, float32 numpy.
    """
    if not hasattr(projector, "n_features_"):
        raise NotFittedError("fit the projector first, e.g. oc.fit_projector('plane', fitted)")
    out = ProjectedComparison(
        projection=projector.name,
        title=projector.title,
        exact=projector.exact,
        axis_titles=projector.axis_titles_,
        labels=(fitted.concept.positive_label, fitted.concept.negative_label),
        pos=projector.pos_2d_,
        neg=projector.neg_2d_,
    )
    arms = {a.name: a for a in comparison.arms} if comparison is not None else {}
    for name, arm in arms.items():
        out.arm_barriers[name] = np.asarray(arm.barrier_after, np.float32)
        out.arm_tokens[name], out.arm_methods[name] = list(arm.tokens), arm.method
    ode, one = arms.get("odesteer"), arms.get("one_step")
    paths = list(ode.paths) if ode is not None else []  # snapshot: the stream keeps growing
    if not paths:
        return out
    out.tokens, out.T, out.target = list(ode.tokens[: len(paths)]), float(ode.T), ode.target
    out.path_barrier = [np.asarray(b, np.float32) for b in ode.barrier_path[: len(paths)]]
    points = [p.float() for p in paths]  # (steps + 1, d) each
    out.path_length = [
        np.concatenate([[0.0], (p[1:] - p[:-1]).norm(dim=1).cumsum(0).numpy()]).astype(np.float32)
        for p in points
    ]
    if one is not None and one.method is not None:
        steerer, judge = fitted.steerer(one.method), fitted.odesteer
        starts = torch.stack([p[0] for p in points])  # (tokens, d)
        with torch.inference_mode():
            ends = steerer.steer(starts.to(steerer.device), one.T)
            out.one_step_barrier = judge.barrier(ends.to(judge.device)).cpu().numpy()
        out.one_step_distance = (ends.cpu().float() - starts.float()).norm(dim=1).numpy()
        out.one_step_method = one.method
        points.append(ends.cpu().float())
    coords = projector.transform(torch.cat(points))  # the one call for every point
    sizes = [len(p) for p in paths]
    split = np.split(coords, np.cumsum(sizes))
    out.paths = split[: len(paths)]
    if out.one_step_barrier is not None:
        out.one_step_end = split[-1]
    return out

"""The ``/compare`` API endpoint: one prompt in, the three arms streamed out, then trajectories.

Every parameter is checked by ``CompareRequest.from_values`` before any work starts; the concept
is a built-in name or ``truthfulqa`` (the web API never reads a server path).
"""

from __future__ import annotations

from collections.abc import Iterator

import odesteer_core as oc
from odesteer_core.pipeline.request import CompareRequest
from odesteer_core.ui.handlers import current_studio, fit_concept, stream_comparison
from odesteer_core.view.registry import PROJECTIONS
from odesteer_core.view.trajectory import project_comparison

__all__ = ["API_STREAM_INTERVAL", "compare"]

API_STREAM_INTERVAL = 0.25  # API clients poll less eagerly than eyes; fewer messages, less work


def compare(
    prompt: str,
    concept: str = "polite",
    strength: float = oc.DEFAULT_STRENGTH,
    steps: int = 10,
    one_step_method: str = "caa",
    max_new_tokens: int = 48,
    seed: int = 0,
    projection: str = "pca",
    target: float | None = None,
) -> Iterator[dict]:
    """Unsteered, one-step and ODESteer generations for one prompt, streamed, then trajectories.

    Yields ``{"texts": {"none", "one_step", "odesteer"}, "done": False}`` as tokens arrive, and
    last ``{"texts", "done": True, "comparison": tokens and per-token barrier values of every
    arm, settings and timing, "trajectories": per-token 2-D ODESteer paths, one-step endpoints
    and the barrier along each path in the chosen projection}``. ``Client.predict`` returns
    the last one. ``target`` (a confidence in (0, 1), or None) steers the ODESteer arm until
    each token's barrier reaches ``logit(target)`` instead of by ``strength``.
    """
    request = CompareRequest.from_values(
        {
            "prompt": prompt,
            "concept": concept,
            "strength": strength,
            "steps": steps,
            "one_step": one_step_method,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "do_sample": False,  # greedy, no penalty: the API's answer depends on the seed alone
            "temperature": 1.0,
            "top_p": 1.0,
            "repetition_penalty": 1.0,
            "target": target,
        }
    )
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
    lm, fitted = fit_concept({"concept": request.concept}, {})
    comparison = None
    for comparison in stream_comparison(lm, fitted, request, API_STREAM_INTERVAL):
        if not comparison.done:
            yield {"texts": {arm.name: arm.text for arm in comparison.arms}, "done": False}
    paths = project_comparison(current_studio().projector(fitted, projection), comparison, fitted)
    yield {
        "texts": {arm.name: arm.text for arm in comparison.arms},
        "done": True,
        "comparison": comparison.to_dict(),
        "trajectories": paths.to_dict(),
    }

"""``compare``: one prompt, the three arms (unsteered, one-step, ODESteer) in one streamed batch.

Turns the ``Steering`` settings into each arm's horizon ``T`` (one relative strength, the same
distance for every method) and runs ``lm.generate.generate_arms`` with the concept's ODESteer
barrier as the judge of every arm's tokens.
"""

from __future__ import annotations

from collections.abc import Iterator

from odesteer_core.lm.generate import Arm, Cancel, generate_arms
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.records import Comparison
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.method.strength import relative_to_T
from odesteer_core.pipeline.fit import FittedConcept
from odesteer_core.pipeline.steering import Steering

__all__ = ["compare"]


def compare(
    lm: LoadedLM,
    fitted: FittedConcept,
    prompt: str,
    steering: Steering | None = None,
    settings: GenerationSettings | None = None,
    *,
    cancel: Cancel | None = None,
) -> Iterator[Comparison]:
    """Stream unsteered / one-step / ODESteer generations for ``prompt``, in one batch.

    Args:
        lm: The model the concept was fitted on.
        fitted: The fitted concept (its layer is the steered layer; its ODESteer the judge).
        prompt: The user's prompt (formatted with the chat template for chat models).
        steering: How the steered arms move (default ``Steering()``: ``DEFAULT_STRENGTH``, CAA).
        settings: How every arm generates (default ``GenerationSettings()``: greedy, 64 tokens).
        cancel: A ``threading.Event`` (or a callable) that stops the generation once set, inside
            the forward pass in progress (``lm.generate.generate_arms``); e.g. set by
            ``studio.stream_in_thread`` when the client goes away.

    Yields:
        One growing ``Comparison`` after each generated token; the last has ``done`` set (with a
        notice when it was cancelled).
    """
    steering = Steering() if steering is None else steering
    odesteer = fitted.odesteer
    rows = []
    for name in steering.arms:
        if name == "none":
            rows.append(Arm("none"))
            continue
        steerer = odesteer if name == "odesteer" else fitted.steerer(steering.one_step)
        horizon = (
            steering.T if steering.T is not None else relative_to_T(steerer, steering.strength)
        )
        if name == "odesteer" and steering.target is not None:  # at most as far as the strength
            rows.append(Arm(name, steerer, horizon, target=steering.target))
        elif name == "odesteer":
            rows.append(Arm(name, steerer, horizon, steps=steering.steps, solver=steering.solver))
        else:
            rows.append(Arm(name, steerer, horizon))
    stream = generate_arms(
        lm,
        prompt,
        rows,
        layer=fitted.layer,
        judge=odesteer,
        settings=settings,
        positions=steering.positions,
        cancel=cancel,
    )
    strength = None if steering.T is not None else steering.strength
    for comparison in stream:
        comparison.settings.update({"strength": strength, "T": steering.T})
        comparison.settings.update({"one_step": steering.one_step, "target": steering.target})
        comparison.settings.update({"concept": fitted.concept.name, "model": fitted.model_name})
        yield comparison

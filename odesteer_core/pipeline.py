"""From a model and a concept to a streamed three-arm comparison: the product's main path.

    lm = oc.load_lm("tiny-random-llama")
    fitted = oc.fit_concept(lm, oc.load_concept("polite"))           # activations + ODESteer
    for comparison in oc.compare(lm, fitted, "How do I ask for a raise?", strength=0.2):
        print(comparison.arm("odesteer").text)

``fit_concept`` extracts (cached) activations at one layer and fits ODESteer; one-step methods are
fitted on first use from the same activations. ``compare`` turns one strength into each arm's
``T`` and runs ``generate_arms``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from .activations import extract_activations
from .concepts import Concept, format_concept
from .generate import Arm, generate_arms
from .models import LoadedLM
from .records import ARM_NAMES, Comparison
from .sampling import GenerationSettings
from .steerers import STEERERS, Steerer, make_steerer
from .strength import relative_to_T

__all__ = ["DEFAULT_STRENGTH", "ONE_STEP_METHODS", "FittedConcept", "compare", "fit_concept"]

ONE_STEP_METHODS = ("caa", "iti", "repe", "step_odesteer", "linear_act")
DEFAULT_STRENGTH = 0.2  # a fifth of the median activation norm: visible, not yet destructive


@dataclass
class FittedConcept:
    """A concept's activations at one layer and the steerers fitted on them."""

    model_name: str
    concept: Concept
    layer: int
    pos: torch.Tensor  # (N, d) float32 CPU
    neg: torch.Tensor  # (M, d) float32 CPU
    steerers: dict[str, Steerer] = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    seed: int = 0

    def steerer(self, method: str) -> Steerer:
        """The fitted steerer for ``method``, fitting it now if needed."""
        if method not in self.steerers:
            if method not in STEERERS:
                raise ValueError(f"unknown steering method {method!r}; valid: {sorted(STEERERS)}")
            device = next(iter(self.steerers.values())).device if self.steerers else "cpu"
            t0 = time.perf_counter()
            steerer = make_steerer(method, seed=self.seed)
            self.steerers[method] = steerer.fit(self.pos.to(device), self.neg.to(device))
            self.timing[f"fit_{method}_s"] = time.perf_counter() - t0
        return self.steerers[method]

    @property
    def odesteer(self) -> Steerer:
        return self.steerer("odesteer")


def fit_concept(
    lm: LoadedLM,
    concept: Concept,
    *,
    layer: int | None = None,
    methods: tuple[str, ...] = ("odesteer",),
    odesteer: Steerer | None = None,
    batch_size: int = 16,
    progress: bool = True,
    cache_dir: str | None = None,
    seed: int = 0,
) -> FittedConcept:
    """Extract the concept's activations at ``layer`` (default: about 40 % of depth) and fit.

    Args:
        odesteer: An unfitted ODESteer steerer with custom options (default options otherwise).
    """
    layer = lm.default_layer() if layer is None else lm.check_layer(layer)
    t0 = time.perf_counter()
    pos_texts, neg_texts = format_concept(concept, lm.tokenizer if lm.is_chat else None)
    acts = extract_activations(
        lm,
        pos_texts + neg_texts,
        layer,
        batch_size=batch_size,
        progress=progress,
        cache_dir=cache_dir,
        cache_key=concept.fingerprint(),
    )
    fitted = FittedConcept(
        model_name=lm.name,
        concept=concept,
        layer=layer,
        pos=acts[: len(pos_texts)],
        neg=acts[len(pos_texts) :],
        seed=seed,
        timing={"extract_s": time.perf_counter() - t0},
    )
    device = lm.layer_device(layer)
    if odesteer is not None:
        t1 = time.perf_counter()
        fitted.steerers["odesteer"] = odesteer.fit(fitted.pos.to(device), fitted.neg.to(device))
        fitted.timing["fit_odesteer_s"] = time.perf_counter() - t1
    else:
        t1 = time.perf_counter()
        steerer = make_steerer("odesteer", seed=seed)
        fitted.steerers["odesteer"] = steerer.fit(fitted.pos.to(device), fitted.neg.to(device))
        fitted.timing["fit_odesteer_s"] = time.perf_counter() - t1
    for method in methods:
        fitted.steerer(method)
    return fitted


def compare(
    lm: LoadedLM,
    fitted: FittedConcept,
    prompt: str,
    *,
    strength: float | None = DEFAULT_STRENGTH,
    T: float | None = None,
    one_step: str = "caa",
    steps: int | None = None,
    solver: str | None = None,
    arms: tuple[str, ...] = ARM_NAMES,
    settings: GenerationSettings | None = None,
    positions: str = "last",
) -> Iterator[Comparison]:
    """Stream unsteered / one-step / ODESteer generations for ``prompt``, one batch.

    Args:
        strength: Relative strength: each arm moves activations by ``strength`` times the
            median activation norm at this layer (``relative_to_T``). Ignored when ``T`` is set.
        T: Absolute horizon, the same number for every arm (units differ for CAA, see
            ``steerers.py``).
        one_step: Method of the one-step arm: one of ``ONE_STEP_METHODS``.
        steps, solver: ODESteer's solver steps and solver (default 10, Euler).
        arms: Which arms to run, a subset of ``("none", "one_step", "odesteer")``.
    """
    if one_step not in ONE_STEP_METHODS:
        raise ValueError(f"unknown one-step method {one_step!r}; valid: {ONE_STEP_METHODS}")
    unknown = [a for a in arms if a not in ARM_NAMES]
    if unknown or not arms or len(set(arms)) != len(arms):
        raise ValueError(f"arms must be distinct names from {ARM_NAMES}, got {list(arms)}")
    if T is None and (
        strength is None or not isinstance(strength, (int, float)) or not math.isfinite(strength)
    ):
        raise ValueError(f"strength must be a finite number, got {strength!r}")
    odesteer = fitted.odesteer
    rows = []
    for name in arms:
        if name == "none":
            rows.append(Arm("none"))
            continue
        steerer = odesteer if name == "odesteer" else fitted.steerer(one_step)
        horizon = T if T is not None else relative_to_T(steerer, strength)
        if name == "odesteer":
            rows.append(Arm(name, steerer, horizon, steps=steps, solver=solver))
        else:
            rows.append(Arm(name, steerer, horizon))
    stream = generate_arms(
        lm,
        prompt,
        rows,
        layer=fitted.layer,
        judge=odesteer,
        settings=settings,
        positions=positions,
    )
    for comparison in stream:
        comparison.settings.update(
            {"strength": None if T is not None else strength, "T": T, "one_step": one_step}
        )
        comparison.settings.update({"concept": fitted.concept.name, "model": fitted.model_name})
        yield comparison

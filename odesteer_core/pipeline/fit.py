"""``fit_concept``: a concept's activations at one layer, and the steerers fitted on them.

Activations are extracted once (and cached on disk); ODESteer is fitted at once, one-step methods
on first use from the same activations (``FittedConcept.steerer``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from odesteer_core.concepts.concept import Concept, format_concept
from odesteer_core.lm.activations import extract_layers
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.method.base import Steerer
from odesteer_core.method.registry import STEERERS, make_steerer

__all__ = ["FittedConcept", "concept_activations", "fit_concept"]


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


def concept_activations(
    lm: LoadedLM,
    concept: Concept,
    layers: list[int],
    progress: bool = True,
    cache_dir: str | None = None,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """The concept's examples, formatted for ``lm`` (its chat template if it has one), read at
    each of ``layers`` in one extraction pass: ``{layer: (pos (N, d), neg (M, d))}``, float32 CPU,
    cached on disk under the concept's fingerprint."""
    pos_texts, neg_texts = format_concept(concept, lm.tokenizer if lm.is_chat else None)
    acts = extract_layers(
        lm,
        pos_texts + neg_texts,
        layers,
        progress=progress,
        cache_dir=cache_dir,
        cache_key=concept.fingerprint(),
    )
    n = len(pos_texts)
    return {layer: (x[:n], x[n:]) for layer, x in acts.items()}


def fit_concept(
    lm: LoadedLM,
    concept: Concept,
    *,
    layer: int | None = None,
    methods: tuple[str, ...] = ("odesteer",),
    odesteer: Steerer | None = None,
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
    ((pos, neg),) = concept_activations(lm, concept, [layer], progress, cache_dir).values()
    fitted = FittedConcept(
        model_name=lm.name,
        concept=concept,
        layer=layer,
        pos=pos,
        neg=neg,
        seed=seed,
        timing={"extract_s": time.perf_counter() - t0},
    )
    device = lm.layer_device(layer)
    steerer = make_steerer("odesteer", seed=seed) if odesteer is None else odesteer
    t1 = time.perf_counter()
    fitted.steerers["odesteer"] = steerer.fit(fitted.pos.to(device), fitted.neg.to(device))
    fitted.timing["fit_odesteer_s"] = time.perf_counter() - t1
    for method in methods:
        fitted.steerer(method)
    return fitted

"""odesteer_core: ODESteer and one-step activation steering of language models.

The package is one sub-package per stage of the data's path (see ``docs/architecture.md``):
``method`` (the maths, torch only) -> ``lm`` (models, hooks, generation) and ``concepts`` (what to
steer towards) -> ``pipeline`` (the front door: fit a concept, compare the arms) -> ``view``
(projections and plots) -> ``studio`` and ``ui`` (the app) ; ``evaluation`` and ``cli`` on top.

Public API (what the app, the CLI and users call)::

    import odesteer_core as oc
    s = oc.make_steerer("odesteer", seed=0).fit(pos, neg)   # (N, d), (M, d) activations
    s.steer(x, oc.relative_to_T(s, 0.3))                      # (B, d) -> (B, d)
    lm = oc.load_lm("Qwen/Qwen2.5-1.5B-Instruct")             # or "tiny-random-llama" offline
    fitted = oc.fit_concept(lm, oc.load_concept("polite"))
    for c in oc.compare(lm, fitted, "How do I ask for a raise?", oc.Steering(strength=0.3)): ...

Names are imported on first use, so ``import odesteer_core`` (and the CLI's ``--help``) stays
fast; ``from odesteer_core import X`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC: dict[str, str] = {
    "Concept": "odesteer_core.concepts.concept",
    "Example": "odesteer_core.concepts.concept",
    "concept_from_texts": "odesteer_core.concepts.concept",
    "format_concept": "odesteer_core.concepts.concept",
    "format_example": "odesteer_core.concepts.concept",
    "load_concept_file": "odesteer_core.concepts.files",
    "list_concepts": "odesteer_core.concepts.sources",
    "load_concept": "odesteer_core.concepts.sources",
    "load_truthfulqa_questions": "odesteer_core.concepts.truthfulqa",
    "truthfulqa_split": "odesteer_core.concepts.truthfulqa",
    "truthfulqa_subset": "odesteer_core.concepts.truthfulqa",
    "GenEvaluation": "odesteer_core.evaluation.generation",
    "classifier_scores": "odesteer_core.evaluation.generation",
    "distinct_n": "odesteer_core.evaluation.generation",
    "evaluate_generation": "odesteer_core.evaluation.generation",
    "GEN_TASKS": "odesteer_core.evaluation.prompts",
    "PromptSet": "odesteer_core.evaluation.prompts",
    "PromptSource": "odesteer_core.evaluation.prompts",
    "load_prompts": "odesteer_core.evaluation.prompts",
    "MC_METHODS": "odesteer_core.evaluation.specs",
    "Scorer": "odesteer_core.evaluation.specs",
    "SettingError": "odesteer_core.evaluation.specs",
    "Sweep": "odesteer_core.evaluation.specs",
    "MCEvaluation": "odesteer_core.evaluation.truthfulqa_mc",
    "continuation_logprobs": "odesteer_core.evaluation.truthfulqa_mc",
    "evaluate_truthfulqa_mc": "odesteer_core.evaluation.truthfulqa_mc",
    "mc_metrics": "odesteer_core.evaluation.truthfulqa_mc",
    "encode_texts": "odesteer_core.lm.activations",
    "extract_activations": "odesteer_core.lm.activations",
    "onednn_linear": "odesteer_core.lm.cpu_kernels",
    "Arm": "odesteer_core.lm.generate",
    "format_prompt": "odesteer_core.lm.generate",
    "generate_arms": "odesteer_core.lm.generate",
    "active_hooks": "odesteer_core.lm.hooks",
    "layer_output_hook": "odesteer_core.lm.hooks",
    "find_decoder_layers": "odesteer_core.lm.layers",
    "LoadedLM": "odesteer_core.lm.loading",
    "TINY_RANDOM_LLAMA": "odesteer_core.lm.loading",
    "TINY_TRAINED_LLAMA": "odesteer_core.lm.loading",
    "cache_root": "odesteer_core.lm.loading",
    "load_lm": "odesteer_core.lm.loading",
    "ARM_NAMES": "odesteer_core.lm.records",
    "ArmRecord": "odesteer_core.lm.records",
    "Comparison": "odesteer_core.lm.records",
    "GenerationSettings": "odesteer_core.lm.sampling",
    "MAX_NEW_TOKENS_CAP": "odesteer_core.lm.sampling",
    "Barrier": "odesteer_core.method.barrier",
    "Steerer": "odesteer_core.method.base",
    "NotFittedError": "odesteer_core.method.checks",
    "FEATURE_MAPS": "odesteer_core.method.features",
    "Identity": "odesteer_core.method.features",
    "RandomFourier": "odesteer_core.method.features",
    "TensorSketch": "odesteer_core.method.features",
    "onednn_available": "odesteer_core.method.kernels",
    "SOLVERS": "odesteer_core.method.ode",
    "integrate": "odesteer_core.method.ode",
    "integrate_with_values": "odesteer_core.method.ode",
    "load_steerer": "odesteer_core.method.persistence",
    "save_steerer": "odesteer_core.method.persistence",
    "STEERERS": "odesteer_core.method.registry",
    "make_steerer": "odesteer_core.method.registry",
    "T_to_relative": "odesteer_core.method.strength",
    "relative_to_T": "odesteer_core.method.strength",
    "DEFAULT_STRENGTH": "odesteer_core.pipeline",
    "FittedConcept": "odesteer_core.pipeline",
    "Steering": "odesteer_core.pipeline",
    "ONE_STEP_METHODS": "odesteer_core.pipeline",
    "compare": "odesteer_core.pipeline",
    "fit_concept": "odesteer_core.pipeline",
    "Projector": "odesteer_core.view.base",
    "ExportUnavailableError": "odesteer_core.view.plots",
    "barrier_figure": "odesteer_core.view.plots",
    "figure_to_html": "odesteer_core.view.plots",
    "figure_to_png": "odesteer_core.view.plots",
    "trajectory_figure": "odesteer_core.view.plots",
    "PROJECTIONS": "odesteer_core.view.registry",
    "fit_projector": "odesteer_core.view.registry",
    "make_projector": "odesteer_core.view.registry",
    "ProjectedComparison": "odesteer_core.view.trajectory",
    "project_comparison": "odesteer_core.view.trajectory",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'odesteer_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})

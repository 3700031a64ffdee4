"""Evaluation: TruthfulQA multiple choice by likelihood, and generation tasks with judges.

What runs is described by small frozen value objects, checked once: a ``Sweep`` (methods x
strengths, layer, ODE steps and solver, seed, batch size), a ``PromptSource`` (task or file,
concept, TruthfulQA CSV, limit) and a ``Scorer`` (a classifier or reward model).
"""

from odesteer_core.evaluation.generation import (
    PAPER_SAMPLING,
    GenEvaluation,
    classifier_scores,
    distinct_n,
    evaluate_generation,
)
from odesteer_core.evaluation.prompts import (
    GEN_TASKS,
    PromptFold,
    PromptSet,
    PromptSource,
    load_prompts,
)
from odesteer_core.evaluation.specs import (
    MC_METHODS,
    Scorer,
    SettingError,
    Sweep,
    check_methods,
    check_strengths,
)
from odesteer_core.evaluation.truthfulqa_mc import (
    MCEvaluation,
    continuation_logprobs,
    continuation_perplexities,
    evaluate_truthfulqa_mc,
    mc_metrics,
)

__all__ = [
    "GEN_TASKS",
    "MC_METHODS",
    "PAPER_SAMPLING",
    "GenEvaluation",
    "MCEvaluation",
    "PromptFold",
    "PromptSet",
    "PromptSource",
    "Scorer",
    "SettingError",
    "Sweep",
    "check_methods",
    "check_strengths",
    "classifier_scores",
    "continuation_logprobs",
    "continuation_perplexities",
    "distinct_n",
    "evaluate_generation",
    "evaluate_truthfulqa_mc",
    "load_prompts",
    "mc_metrics",
]

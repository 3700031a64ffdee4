"""Evaluation: TruthfulQA multiple choice by likelihood, and generation tasks with judges."""

from odesteer_core.evaluation.generation import (
    GEN_TASKS,
    GenEvaluation,
    classifier_scores,
    distinct_n,
    evaluate_generation,
    load_prompts,
)
from odesteer_core.evaluation.truthfulqa_mc import (
    MC_METHODS,
    MCEvaluation,
    continuation_logprobs,
    evaluate_truthfulqa_mc,
    mc_metrics,
)

__all__ = [
    "GEN_TASKS",
    "MC_METHODS",
    "GenEvaluation",
    "MCEvaluation",
    "classifier_scores",
    "continuation_logprobs",
    "distinct_n",
    "evaluate_generation",
    "evaluate_truthfulqa_mc",
    "load_prompts",
    "mc_metrics",
]

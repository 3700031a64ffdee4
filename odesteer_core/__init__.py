"""odesteer_core: ODESteer and one-step activation steering of language models.

Public API (what the app, the CLI and users call)::

    import odesteer_core as oc
    s = oc.make_steerer("odesteer", seed=0).fit(pos, neg)   # (N, d), (M, d) activations
    s.steer(x, oc.relative_to_T(s, 0.3))                      # (B, d) -> (B, d)
    lm = oc.load_lm("Qwen/Qwen2.5-1.5B-Instruct")             # or "tiny-random-llama" offline
"""

from ._checks import NotFittedError
from .activations import encode_texts, extract_activations
from .barrier import Barrier
from .concept_sources import list_concepts, load_concept, load_concept_file
from .concepts import (
    Concept,
    Example,
    concept_from_texts,
    format_concept,
)
from .cpu_linear import onednn_available, onednn_linear
from .eval_gen import (
    GEN_TASKS,
    GenEvaluation,
    classifier_scores,
    distinct_n,
    evaluate_generation,
    load_prompts,
)
from .eval_mc import (
    MC_METHODS,
    MCEvaluation,
    continuation_logprobs,
    evaluate_truthfulqa_mc,
    mc_metrics,
)
from .features import FEATURE_MAPS, Identity, RandomFourier, TensorSketch
from .generate import Arm, format_prompt, generate_arms
from .hooks import active_hooks, layer_output_hook
from .io import load_steerer, save_steerer
from .models import TINY_RANDOM_LLAMA, LoadedLM, cache_root, find_decoder_layers, load_lm
from .ode import SOLVERS, integrate, integrate_with_values
from .pipeline import DEFAULT_STRENGTH, ONE_STEP_METHODS, FittedConcept, compare, fit_concept
from .plots import (
    ExportUnavailableError,
    barrier_figure,
    figure_to_html,
    figure_to_png,
    trajectory_figure,
)
from .projection import PROJECTIONS, Projector, fit_projector, make_projector
from .records import ARM_NAMES, ArmRecord, Comparison
from .sampling import MAX_NEW_TOKENS_CAP, GenerationSettings
from .steerers import STEERERS, Steerer, make_steerer
from .strength import T_to_relative, relative_to_T
from .trajectory import ProjectedComparison, project_comparison
from .truthfulqa import load_truthfulqa_questions, truthfulqa_split, truthfulqa_subset

__all__ = [
    "onednn_available",
    "onednn_linear",
    "ARM_NAMES",
    "DEFAULT_STRENGTH",
    "FEATURE_MAPS",
    "GEN_TASKS",
    "MAX_NEW_TOKENS_CAP",
    "MC_METHODS",
    "ONE_STEP_METHODS",
    "PROJECTIONS",
    "SOLVERS",
    "STEERERS",
    "TINY_RANDOM_LLAMA",
    "Arm",
    "ArmRecord",
    "Barrier",
    "Comparison",
    "Concept",
    "Example",
    "ExportUnavailableError",
    "FittedConcept",
    "GenEvaluation",
    "GenerationSettings",
    "Identity",
    "LoadedLM",
    "MCEvaluation",
    "NotFittedError",
    "ProjectedComparison",
    "Projector",
    "RandomFourier",
    "Steerer",
    "T_to_relative",
    "TensorSketch",
    "active_hooks",
    "barrier_figure",
    "cache_root",
    "classifier_scores",
    "compare",
    "concept_from_texts",
    "continuation_logprobs",
    "distinct_n",
    "encode_texts",
    "evaluate_generation",
    "evaluate_truthfulqa_mc",
    "extract_activations",
    "figure_to_html",
    "figure_to_png",
    "find_decoder_layers",
    "fit_concept",
    "fit_projector",
    "format_concept",
    "format_prompt",
    "generate_arms",
    "integrate",
    "integrate_with_values",
    "layer_output_hook",
    "list_concepts",
    "load_concept",
    "load_concept_file",
    "load_lm",
    "load_prompts",
    "load_steerer",
    "load_truthfulqa_questions",
    "make_projector",
    "make_steerer",
    "mc_metrics",
    "project_comparison",
    "relative_to_T",
    "save_steerer",
    "trajectory_figure",
    "truthfulqa_split",
    "truthfulqa_subset",
]

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
from .concepts import (
    Concept,
    Example,
    concept_from_texts,
    format_concept,
    list_concepts,
    load_concept,
    load_concept_file,
)
from .features import FEATURE_MAPS, Identity, RandomFourier, TensorSketch
from .generate import Arm, format_prompt, generate_arms
from .hooks import active_hooks, layer_output_hook
from .io import load_steerer, save_steerer
from .models import TINY_RANDOM_LLAMA, LoadedLM, cache_root, find_decoder_layers, load_lm
from .ode import SOLVERS, integrate
from .pipeline import DEFAULT_STRENGTH, ONE_STEP_METHODS, FittedConcept, compare, fit_concept
from .records import ARM_NAMES, ArmRecord, Comparison
from .sampling import MAX_NEW_TOKENS_CAP, GenerationSettings
from .steerers import STEERERS, Steerer, make_steerer
from .strength import T_to_relative, relative_to_T
from .truthfulqa import load_truthfulqa_questions, truthfulqa_split, truthfulqa_subset

__all__ = [
    "ARM_NAMES",
    "DEFAULT_STRENGTH",
    "FEATURE_MAPS",
    "MAX_NEW_TOKENS_CAP",
    "ONE_STEP_METHODS",
    "SOLVERS",
    "STEERERS",
    "TINY_RANDOM_LLAMA",
    "Arm",
    "ArmRecord",
    "Barrier",
    "Comparison",
    "Concept",
    "Example",
    "FittedConcept",
    "GenerationSettings",
    "Identity",
    "LoadedLM",
    "NotFittedError",
    "RandomFourier",
    "Steerer",
    "T_to_relative",
    "TensorSketch",
    "active_hooks",
    "cache_root",
    "compare",
    "concept_from_texts",
    "encode_texts",
    "extract_activations",
    "find_decoder_layers",
    "fit_concept",
    "format_concept",
    "format_prompt",
    "generate_arms",
    "integrate",
    "layer_output_hook",
    "list_concepts",
    "load_concept",
    "load_concept_file",
    "load_lm",
    "load_steerer",
    "load_truthfulqa_questions",
    "make_steerer",
    "relative_to_T",
    "save_steerer",
    "truthfulqa_split",
    "truthfulqa_subset",
]

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
from .features import FEATURE_MAPS, Identity, RandomFourier, TensorSketch
from .hooks import active_hooks, layer_output_hook
from .io import load_steerer, save_steerer
from .models import TINY_RANDOM_LLAMA, LoadedLM, cache_root, find_decoder_layers, load_lm
from .ode import SOLVERS, integrate
from .steerers import STEERERS, Steerer, make_steerer
from .strength import T_to_relative, relative_to_T

__all__ = [
    "FEATURE_MAPS",
    "SOLVERS",
    "STEERERS",
    "TINY_RANDOM_LLAMA",
    "Barrier",
    "Identity",
    "LoadedLM",
    "NotFittedError",
    "RandomFourier",
    "Steerer",
    "T_to_relative",
    "TensorSketch",
    "active_hooks",
    "cache_root",
    "encode_texts",
    "extract_activations",
    "find_decoder_layers",
    "integrate",
    "layer_output_hook",
    "load_lm",
    "load_steerer",
    "make_steerer",
    "relative_to_T",
    "save_steerer",
]

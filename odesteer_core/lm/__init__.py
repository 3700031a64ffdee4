"""Language models: loading, decoder layers, hooks, activations, sampling and the three arms.

``load_lm`` gives a ``LoadedLM``; ``extract_activations`` records one layer's output at the last
token of each text; ``generate_arms`` runs several steering arms as rows of one batch, with a
forward hook that exists only while the batch is generated.
"""

from odesteer_core.lm.activations import encode_texts, extract_activations
from odesteer_core.lm.cpu_kernels import onednn_linear
from odesteer_core.lm.generate import Arm, format_prompt, generate_arms
from odesteer_core.lm.hooks import active_hooks, layer_output_hook
from odesteer_core.lm.layers import find_decoder_layers
from odesteer_core.lm.loading import (
    TINY_RANDOM_LLAMA,
    TINY_TRAINED_LLAMA,
    LoadedLM,
    cache_root,
    load_lm,
)
from odesteer_core.lm.records import ARM_NAMES, ArmRecord, Comparison
from odesteer_core.lm.sampling import MAX_NEW_TOKENS_CAP, GenerationSettings

__all__ = [
    "ARM_NAMES",
    "MAX_NEW_TOKENS_CAP",
    "TINY_RANDOM_LLAMA",
    "TINY_TRAINED_LLAMA",
    "Arm",
    "ArmRecord",
    "Comparison",
    "GenerationSettings",
    "LoadedLM",
    "active_hooks",
    "cache_root",
    "encode_texts",
    "extract_activations",
    "find_decoder_layers",
    "format_prompt",
    "generate_arms",
    "layer_output_hook",
    "load_lm",
    "onednn_linear",
]

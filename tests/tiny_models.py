"""Tiny random-weight models of every supported architecture, for tests.

`tiny_model(arch)` builds a 2-layer, 64-wide model from its `Config` class with the offline test
tokenizer, saves it, and loads it back through `load_lm` (the product's own path). Models are
built once per process and shared, so tests must not modify them (use `monkeypatch` for
tokenizer attributes such as `padding_side`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import transformers

from odesteer_core.lm.loading import LoadedLM, load_lm
from odesteer_core.lm.tiny_model import build_tiny_tokenizer

# arch -> (config class name, extra config kwargs beyond the shared small sizes)
ARCH_CONFIGS: dict[str, tuple[str, dict]] = {
    "llama": ("LlamaConfig", {"num_key_value_heads": 2}),
    "mistral": ("MistralConfig", {"num_key_value_heads": 2}),
    "qwen2": ("Qwen2Config", {"num_key_value_heads": 2}),
    "qwen3": ("Qwen3Config", {"num_key_value_heads": 2, "head_dim": 16}),
    "gemma2": ("Gemma2Config", {"num_key_value_heads": 2, "head_dim": 16}),
    "gemma3": ("Gemma3TextConfig", {"num_key_value_heads": 2, "head_dim": 16}),
    "phi3": ("Phi3Config", {"num_key_value_heads": 2}),
    "gpt2": ("GPT2Config", {"n_positions": 512}),
    "gpt_neox": ("GPTNeoXConfig", {}),
    "falcon": ("FalconConfig", {"new_decoder_architecture": False, "multi_query": True}),
    "olmo": ("OlmoConfig", {"num_key_value_heads": 2}),
    "olmo2": ("Olmo2Config", {"num_key_value_heads": 2}),
}
ARCHS = tuple(ARCH_CONFIGS)
N_LAYERS = 3


def tiny_config(arch: str) -> transformers.PretrainedConfig:
    """A small config of `arch` whose vocabulary and special ids match the tiny tokenizer."""
    if arch not in ARCH_CONFIGS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    class_name, extra = ARCH_CONFIGS[arch]
    tok = build_tiny_tokenizer()
    return getattr(transformers, class_name)(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=4,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **extra,
    )


def build_tiny_random(arch: str, path: Path) -> Path:
    """Save a tiny random `arch` model and the tiny tokenizer to `path` (seeded: repeatable)."""
    config = tiny_config(arch)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    build_tiny_tokenizer().save_pretrained(path)
    return path


@functools.cache
def tiny_model(arch: str) -> LoadedLM:
    """A tiny random `arch` model loaded through `load_lm` (float32, CPU), built once."""
    return load_lm(str(build_tiny_random(arch, _root() / arch)), device="cpu", dtype="float32")


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="odesteer-tiny-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread: tiny models are much faster so, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


POLITE = [f"Thank you kindly for item {i}, I really appreciate your help." for i in range(10)]
RUDE = [f"Item {i} is late again, you useless idiot, hurry up." for i in range(10)]


def fit_tiny_polite(lm, cache_dir: Path):
    """The tiny polite-vs-rude concept fitted on ``lm`` (ODESteer and CAA), cached in a folder."""
    from odesteer_core.concepts.concept import concept_from_texts
    from odesteer_core.pipeline import fit_concept

    concept = concept_from_texts(POLITE, RUDE, name="tiny-polite")
    return fit_concept(lm, concept, progress=False, cache_dir=str(cache_dir), methods=("caa",))

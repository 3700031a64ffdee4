"""The offline test model: a small random-weight Llama with a locally trained tokenizer.

``load_lm("tiny-random-llama")`` builds it once into the cache with ``save_pretrained`` and then
loads it through the same ``from_pretrained`` path as any Hub model. Its outputs are meaningless;
it exists so the whole pipeline runs without network (tests, CI, offline demos).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

__all__ = ["TINY_RANDOM_LLAMA", "build_tiny_random_llama", "build_tiny_tokenizer"]

TINY_RANDOM_LLAMA = "tiny-random-llama"
_TINY_VERSION = "1"  # bump when the recipe changes, so old cached builds are rebuilt
_TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_TINY_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Question: what is the capital of France? "
    "Answer: Paris is the capital of France. I think that honest answers are better than "
    "confident guesses. Please write a short, kind and helpful reply to the user. The model "
    "should not say anything toxic or rude. Is it true that the moon is made of cheese? No, "
    "the moon is made of rock and dust. Steering vectors change what a language model says. "
    "We compare one step with an ODE solved in ten small steps. Thank you for your question!"
)
# Attribute paths of the decoder-layer ModuleList, most common first.


def build_tiny_random_llama(path: Path) -> Path:
    """Build the offline test model (random weights) at `path` once, atomically, and return it.

    A 4-layer, 64-wide Llama with a locally trained byte-level BPE tokenizer and a chat
    template, saved with `save_pretrained` so it loads like any Hub model. Its outputs are
    meaningless; it exists to exercise the whole pipeline without network.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / "odesteer_tiny_version").is_file():
        if (path / "odesteer_tiny_version").read_text().strip() == _TINY_VERSION:
            return path
        shutil.rmtree(path, ignore_errors=True)  # an older recipe: rebuild
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tokenizer = build_tiny_tokenizer()
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "odesteer_tiny_version").write_text(_TINY_VERSION)
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished first (path is a non-empty folder now)
            if not (path / "odesteer_tiny_version").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer with bos/eos/pad/unk tokens and a chat template.

    Trained in milliseconds on a built-in paragraph; byte-level, so it round-trips any text.
    Like Llama it prepends `<s>` when `add_special_tokens=True`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    special = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TINY_CORPUS.split(". "), trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bpe.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens=special[4:],
        chat_template=_TINY_CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )

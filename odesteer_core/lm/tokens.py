"""Text to token ids and the tokens that end a reply: the one place for BOS and EOS rules.

Special tokens follow the tokenizer's defaults, except that no second BOS is added to a text that
already starts with it (chat templates usually write it themselves). A reply ends at any of the
model's end-of-sequence ids (its generation config may list several, e.g. Llama-3's
``<|eot_id|>``) or the tokenizer's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from odesteer_core.lm.loading import LoadedLM

__all__ = ["eos_ids", "token_ids"]


def token_ids(lm: LoadedLM, text: str) -> list[int]:
    """The ids of ``text``, with the tokenizer's special tokens but never a doubled BOS."""
    tok = lm.tokenizer
    has_bos = tok.bos_token is not None and text.startswith(tok.bos_token)
    return tok(text, add_special_tokens=not has_bos, verbose=False)["input_ids"]


def eos_ids(lm: LoadedLM) -> set[int]:
    """Every id that ends a reply: the generation config's EOS ids and the tokenizer's."""
    ids: set[int] = set()
    for source in (lm.model.generation_config.eos_token_id, lm.tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif isinstance(source, (list, tuple)):
            ids.update(int(i) for i in source)
    return ids

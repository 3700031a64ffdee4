"""Concepts: contrastive sets of positive and negative examples that a steerer is fitted on.

A concept is two sides of examples (question/answer pairs or bare texts). ``build_concept`` and
``concept_from_texts`` validate once (blank and duplicate texts dropped, at least
``MIN_EXAMPLES_PER_SIDE`` per side) so downstream code can trust a ``Concept``; ``format_example``
turns an example into the model's input text as the paper does. Where concepts come from (the
built-ins in ``builtin/``, TruthfulQA, user files) is ``sources.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MIN_EXAMPLES_PER_SIDE",
    "Concept",
    "Example",
    "build_concept",
    "concept_from_texts",
    "format_concept",
    "format_example",
]

MIN_EXAMPLES_PER_SIDE = 8


@dataclass(frozen=True)
class Example:
    """One side of one example: an optional question (the prompt) and the answer text."""

    question: str | None
    answer: str


@dataclass(frozen=True)
class Concept:
    """A named, validated set of positive and negative examples plus demo prompts."""

    name: str
    description: str
    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    prompts: tuple[str, ...] = ()
    positive_label: str = "positive"
    negative_label: str = "negative"

    def fingerprint(self) -> str:
        """Return a stable SHA-256 hex digest of the examples, for keying activation caches.

        Only the examples enter the hash: renaming a concept or editing its prompts does not
        invalidate cached activations, while any change to an example text does.
        """
        payload = {
            "version": 1,
            "positive": [[ex.question, ex.answer] for ex in self.positive],
            "negative": [[ex.question, ex.answer] for ex in self.negative],
        }
        blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def build_concept(
    name: str,
    description: str,
    positive: list[Example],
    negative: list[Example],
    *,
    prompts: list[str] | tuple[str, ...] = (),
    positive_label: str = "positive",
    negative_label: str = "negative",
    source: str = "concept",
) -> Concept:
    """Clean and validate raw examples into a ``Concept``; the single validation point.

    Texts are stripped; blank answers and exact duplicates are dropped (order kept).

    Raises:
        ValueError: if a side is left with fewer than ``MIN_EXAMPLES_PER_SIDE`` examples, all of a
            side's examples are duplicates, or both sides are identical. ``source`` names the
            input (e.g. a file path) in the message.
    """
    sides = {}
    for side, raw in (("positive", positive), ("negative", negative)):
        kept: dict[Example, None] = {}
        n_blank = 0
        for ex in raw:
            answer = ex.answer.strip()
            question = ex.question.strip() if ex.question is not None else None
            if not answer:
                n_blank += 1
                continue
            kept.setdefault(Example(question or None, answer), None)
        n_dup = len(raw) - n_blank - len(kept)
        if len(kept) == 1 and n_dup > 0:
            raise ValueError(
                f"{source}: all {len(raw) - n_blank} {side} examples are duplicates of the same "
                f"text; give at least {MIN_EXAMPLES_PER_SIDE} different {side} examples."
            )
        if len(kept) < MIN_EXAMPLES_PER_SIDE:
            raise ValueError(
                f"{source}: only {len(kept)} usable {side} examples ({n_blank} blank and {n_dup} "
                f"duplicates removed); at least {MIN_EXAMPLES_PER_SIDE} distinct {side} examples "
                "are needed. Add more examples."
            )
        sides[side] = tuple(kept)
    if set(sides["positive"]) == set(sides["negative"]):
        raise ValueError(
            f"{source}: the positive and negative examples are identical; the negative side must "
            "hold the contrasting examples (e.g. rude replies against polite ones)."
        )
    clean_prompts = tuple(dict.fromkeys(p.strip() for p in prompts if p.strip()))
    return Concept(
        name=name,
        description=description,
        positive=sides["positive"],
        negative=sides["negative"],
        prompts=clean_prompts,
        positive_label=positive_label,
        negative_label=negative_label,
    )


def concept_from_texts(
    positive: list[str], negative: list[str], *, name: str = "custom", description: str = ""
) -> Concept:
    """Build a concept from two lists of bare texts (no question).

    Raises:
        TypeError: if a side is not a list/tuple of strings.
        ValueError: if validation fails (see ``build_concept``).
    """
    sides = []
    for side, texts in (("positive", positive), ("negative", negative)):
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(
                f"{side} must be a list of strings, got {type(texts).__name__}; "
                "split a pasted block into one string per example."
            )
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"{side} must hold only strings, found {bad[0]!r}.")
        sides.append([Example(None, t) for t in texts])
    return build_concept(name, description, sides[0], sides[1], source=name)


def _uses_chat_template(tokenizer: Any) -> bool:
    return tokenizer is not None and getattr(tokenizer, "chat_template", None) is not None


def format_example(ex: Example, tokenizer: Any = None) -> str:
    """Render one example as the text whose last-token activation is recorded.

    Base models (``tokenizer`` is None or has no chat template) get ``"Q: {q}\\nA: {a}"``, or just
    the answer when there is no question. Chat models get the user/assistant chat template; a bare
    answer becomes a lone assistant turn when the template accepts it, else plain text.
    """
    if not _uses_chat_template(tokenizer):
        return ex.answer if ex.question is None else f"Q: {ex.question}\nA: {ex.answer}"
    messages = [{"role": "assistant", "content": ex.answer}]
    if ex.question is not None:
        messages.insert(0, {"role": "user", "content": ex.question})
        return tokenizer.apply_chat_template(messages, tokenize=False)
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # templates may reject a conversation that starts with the assistant
        return ex.answer
    return rendered if isinstance(rendered, str) and ex.answer in rendered else ex.answer


def format_concept(concept: Concept, tokenizer: Any = None) -> tuple[list[str], list[str]]:
    """Render a concept's examples with ``format_example``: (positive texts, negative texts)."""
    return (
        [format_example(ex, tokenizer) for ex in concept.positive],
        [format_example(ex, tokenizer) for ex in concept.negative],
    )

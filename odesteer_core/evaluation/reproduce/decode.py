"""Batched steered sampling whose every row is seeded by its own prompt, not by its batch.

Rows of one batch are prompts (left-padded, position ids counting real tokens), all steered by
the same arm. As in the paper (docs/method.md section 7), the edit applies to the last position
of every forward call: the last prompt token at prefill, then each new token (KV cache on).
Sampling uses transformers' own logits processors (repetition penalty, no-repeat n-grams,
temperature, top-p); each row then picks its token by inverse CDF with one uniform draw from a
generator seeded by *its prompt's* seed. A prompt therefore gets the same tokens whichever other
prompts share its batch up to float rounding, and the same batches (``chunks``) give the same
numbers however the chunks are spread over processes (``distributed.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from transformers import (
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from odesteer_core.lm.hooks import layer_output_hook
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.tokens import eos_ids
from odesteer_core.method.base import Steerer

__all__ = ["DecodeSettings", "SteerArm", "prompt_seed", "sample_batch"]


@dataclass(frozen=True)
class DecodeSettings:
    """How a task's generations decode (defaults: the paper's TruthfulQA settings)."""

    max_new_tokens: int = 50
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 0  # 0: off (UltraFeedback: 2)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SteerArm:
    """A fitted steerer and how far it moves (``T``, or a target confidence); None: unsteered."""

    steerer: Steerer | None = None
    T: float | None = None
    target: float | None = None
    steps: int | None = None
    solver: str | None = None

    def edit(self, x: torch.Tensor) -> torch.Tensor:
        """Steered rows ``x`` (B, d)."""
        options = {"steps": self.steps, "solver": self.solver}
        if self.target is not None:
            return self.steerer.steer(x, None, target=self.target, **options)
        return self.steerer.steer(x, self.T, **options)


def prompt_seed(seed: int, task: str, index: int) -> int:
    """The sampling seed of one prompt: a hash of the run's seed, the task and the prompt index."""
    digest = hashlib.sha256(f"{seed}/{task}/{index}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def _processors(settings: DecodeSettings) -> LogitsProcessorList:
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(settings.no_repeat_ngram_size))
    if settings.do_sample:
        if settings.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_p < 1.0:
            processors.append(TopPLogitsWarper(settings.top_p))
    return processors


def _pick(scores: torch.Tensor, generators: list[torch.Generator], sample: bool) -> torch.Tensor:
    """Next token of every row: argmax, or inverse CDF at the row's own uniform draw."""
    if not sample:
        return scores.argmax(dim=-1)
    cdf = torch.softmax(scores, dim=-1).cumsum(dim=-1)
    u = torch.stack([torch.rand((), generator=g) for g in generators]).to(cdf.device)
    token = torch.searchsorted(cdf, (u[:, None] * cdf[:, -1:]).contiguous())
    return token.squeeze(1).clamp_max(cdf.shape[-1] - 1)


def _left_pad(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, longest - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[b, longest - len(row) :] = 1
    return ids, mask


def sample_batch(
    lm: LoadedLM,
    prompts: Sequence[list[int]],
    seeds: Sequence[int],
    arm: SteerArm,
    layer: int,
    settings: DecodeSettings,
) -> list[list[int]]:
    """Generate for a batch of tokenized prompts under one arm; the new ids of each (no EOS).

    Args:
        lm: The loaded model.
        prompts: Token ids of each prompt, already formatted and tokenized.
        seeds: One sampling seed per prompt (``prompt_seed``).
        arm: The steering of every row (``SteerArm()``: unsteered).
        layer: Decoder layer whose output is edited.
        settings: Decoding settings.
    """
    device, eos = lm.device, eos_ids(lm)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else min(eos)
    ids, mask = _left_pad(prompts, pad)
    ids, mask = ids.to(device), mask.to(device)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    processors, batch = _processors(settings), len(prompts)
    finished = torch.zeros(batch, dtype=torch.bool)
    new: list[list[int]] = [[] for _ in range(batch)]

    def steer(hidden: torch.Tensor) -> torch.Tensor:
        edited = hidden.clone()
        edited[:, -1] = arm.edit(hidden[:, -1])
        return edited

    hooked = arm.steerer is not None and (arm.T != 0.0 or arm.target is not None)
    inputs = {"input_ids": ids, "attention_mask": mask, "use_cache": True, "logits_to_keep": 1}
    inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    history = ids
    with torch.inference_mode():
        for _ in range(settings.max_new_tokens):
            if hooked:
                with layer_output_hook(lm.layers[layer], steer), lm.cpu_kernels():
                    out = lm.model(**inputs)
            else:
                with lm.cpu_kernels():
                    out = lm.model(**inputs)
            scores = processors(history, out.logits[:, -1].float())
            token = _pick(scores, generators, settings.do_sample).cpu()
            for b in range(batch):
                if not finished[b]:
                    if int(token[b]) in eos:
                        finished[b] = True
                    else:
                        new[b].append(int(token[b]))
            if bool(finished.all()):
                break
            token[finished] = pad
            history = torch.cat([history, token.to(device)[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
            position = inputs["position_ids"][:, -1:] + 1
            inputs = {"input_ids": history[:, -1:], "attention_mask": mask, "use_cache": True}
            inputs.update(cache=out.cache, position_ids=position, logits_to_keep=1)
    return new

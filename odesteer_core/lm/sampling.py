"""Next-token choice for a batch of arms with common random numbers.

Greedy or sampling (temperature, top-k, top-p, repetition penalty; Hugging Face's own logits
processors, so the settings mean what they mean in ``generate``). All rows of a step share ONE
uniform draw from a seeded generator and pick their token by inverse CDF: two arms whose next-token
distributions agree pick the same token, so the arms differ only where steering changed the model,
never by sampling luck. That equals giving every row its own generator with the same seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

__all__ = ["MAX_NEW_TOKENS_CAP", "GenerationSettings", "TokenSampler"]

MAX_NEW_TOKENS_CAP = 1024  # one comparison generates at most this many tokens per arm


@dataclass(frozen=True)
class GenerationSettings:
    """How each arm generates. Defaults: greedy, 64 new tokens."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0  # paper: 0.7 with sampling
    top_p: float = 1.0  # paper: 0.9
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0  # paper: 1.1
    seed: int = 0

    def __post_init__(self) -> None:
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS_CAP:
            raise ValueError(f"max_new_tokens must be an int in 1..{MAX_NEW_TOKENS_CAP}, got {n!r}")
        for name, low in (("temperature", 0.0), ("top_p", 0.0), ("repetition_penalty", 0.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= low:
                raise ValueError(f"{name} must be a finite number > {low}, got {value!r}")
        if self.top_p > 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0 = off), got {self.top_k!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class TokenSampler:
    """Picks the next token of every row; one instance per generation (it owns the RNG)."""

    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        processors = LogitsProcessorList()
        if settings.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
        if settings.do_sample:
            if settings.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(settings.temperature))
            if settings.top_k > 0:
                processors.append(TopKLogitsWarper(settings.top_k))
            if settings.top_p < 1.0:
                processors.append(TopPLogitsWarper(settings.top_p))
        self.processors = processors
        self.generator = torch.Generator().manual_seed(settings.seed)

    def __call__(self, input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``input_ids`` (B, t) so far and ``logits`` (B, V) -> next tokens (B,)."""
        scores = self.processors(input_ids, logits.float())
        if not self.settings.do_sample:
            return scores.argmax(dim=-1)
        probs = torch.softmax(scores, dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = torch.rand((), generator=self.generator).to(cdf.device)  # shared by all rows
        token = torch.searchsorted(cdf, (u * cdf[:, -1:]).contiguous())  # (B, 1)
        return token.squeeze(1).clamp_max(probs.shape[-1] - 1)

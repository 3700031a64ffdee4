"""What a side-by-side comparison produces: per-arm texts, tokens, barrier values and paths.

Value objects only. ``Comparison`` grows while tokens stream in; ``to_dict`` is the JSON form the
CLI prints and the app exports (paths optional: they are the bulky part).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["ARM_NAMES", "ArmRecord", "Comparison"]

ARM_NAMES = ("none", "one_step", "odesteer")


@dataclass
class ArmRecord:
    """One arm's generation so far. Entry ``i`` of every list belongs to generated token ``i``.

    The edit recorded for token ``i`` is the one applied at the forward call that predicted it
    (the last prompt token for ``i = 0``, then the previous generated token).
    """

    name: str  # "none" | "one_step" | "odesteer"
    method: str | None  # steering method, None for the unsteered arm
    T: float  # integration horizon actually used
    steps: int  # solver steps (1 for one-step methods, 0 for the unsteered arm and target mode)
    target: float | None = None  # target mode: each position moved until h = logit(target)
    token_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # each token decoded on its own
    text: str = ""
    barrier_before: list[float] = field(default_factory=list)  # judge's h before the edit
    barrier_after: list[float] = field(default_factory=list)  # and after it
    barrier_path: list[list[float]] = field(default_factory=list)  # h at each path point
    paths: list[torch.Tensor] = field(default_factory=list)  # (steps + 1, d) float16, CPU
    finished: bool = False

    @property
    def mean_barrier(self) -> float:
        values = self.barrier_after
        return sum(values) / len(values) if values else float("nan")

    @property
    def share_positive(self) -> float:
        """Share of tokens whose steered activation is on the positive side (h > 0)."""
        values = self.barrier_after
        return sum(v > 0 for v in values) / len(values) if values else float("nan")

    def edit_sizes(self) -> list[float]:
        """How far the edit moved each token's activation (0 for the unsteered arm)."""
        return [float((p[-1].float() - p[0].float()).norm()) for p in self.paths]

    def to_dict(self, *, include_paths: bool = False) -> dict:
        out = {
            "name": self.name,
            "method": self.method,
            "T": self.T,
            "steps": self.steps,
            "target": self.target,
            "text": self.text,
            "tokens": self.tokens,
            "token_ids": self.token_ids,
            "barrier": self.barrier_after,
            "barrier_before": self.barrier_before,
            "mean_barrier": self.mean_barrier,
            "share_positive": self.share_positive,
        }
        if include_paths:
            out["barrier_path"] = self.barrier_path
            out["paths"] = [p.float().tolist() for p in self.paths]
        return out


@dataclass
class Comparison:
    """Arms generated side by side from one prompt."""

    prompt: str
    formatted_prompt: str
    arms: list[ArmRecord]
    layer: int
    settings: dict
    timing: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # e.g. "prompt truncated", "test model"
    done: bool = False

    def arm(self, name: str) -> ArmRecord:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r}; arms: {[a.name for a in self.arms]}")

    def to_dict(self, *, include_paths: bool = False) -> dict:
        return {
            "prompt": self.prompt,
            "formatted_prompt": self.formatted_prompt,
            "arms": [a.to_dict(include_paths=include_paths) for a in self.arms],
            "layer": self.layer,
            "settings": self.settings,
            "timing": self.timing,
            "notices": self.notices,
        }

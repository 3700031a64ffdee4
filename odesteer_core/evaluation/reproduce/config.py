"""What ``reproduce`` runs, checked once: the model, the tasks and arms, the data and the judges.

Three frozen value objects, each checking its fields on construction (a bad field raises
``SettingError`` naming it, which the CLI turns into its option): ``RunConfig`` (model, tasks,
methods, the strength or target sweep, limits, seed), ``DataFiles`` (local copies of each task's
data, for offline runs) and ``JudgeConfig`` (the judges of every metric, their devices and batch
size). ``digest`` hashes exactly the settings a stored result depends on (``store.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from odesteer_core.evaluation.specs import (
    EVAL_STRENGTH,
    SettingError,
    check_methods,
    check_strengths,
    check_targets,
    has_target_mode,
)
from odesteer_core.method.registry import STEERERS

__all__ = [
    "ALL_METHODS",
    "JUDGE_NAMES",
    "TASK_NAMES",
    "DataFiles",
    "JudgeConfig",
    "RunConfig",
    "digest",
    "has_target_mode",
]

TASK_NAMES = ("truthfulqa-mc", "truthfulqa-gen", "ultrafeedback", "toxicity")
ALL_METHODS = ("none", *STEERERS)
JUDGE_NAMES = ("truth", "info", "reward", "toxicity", "perplexity")
PAPER_SEED = 42  # the authors' code: seed_everything(42), also the splits' seed


def digest(value: object) -> str:
    """A short stable hash of a JSON-able value (keys sorted)."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _positive(name: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError(name, f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """The model and the arms: every method at every strength (or target) on every task."""

    model: str
    tasks: tuple[str, ...] = TASK_NAMES
    methods: tuple[str, ...] = ALL_METHODS
    strengths: tuple[float, ...] | None = (EVAL_STRENGTH,)  # relative (method/strength.py)
    targets: tuple[float, ...] | None = None  # target confidences p in (0, 1), exclusive with it
    limit: int | None = None  # first N test items of each test split
    fit_limit: int | None = None  # first N fit examples (per class; TruthfulQA: questions)
    seed: int = PAPER_SEED
    layer: int | None = None  # None: about 40 % of depth
    steps: int | None = None  # ODE methods' solver steps (None: the steerer's own)
    solver: str | None = None
    gen_batch_size: int = 8  # prompts per generation batch (a chunk: the unit of sharding)
    max_new_tokens: int | None = None  # None: each task's own (tasks.TASKS)

    def __post_init__(self) -> None:
        tasks = self.tasks
        tasks = tuple(t.strip() for t in tasks.split(",")) if isinstance(tasks, str) else tasks
        bad = [t for t in tasks if t not in TASK_NAMES]
        if bad or not tasks or len(set(tasks)) != len(tasks):
            raise SettingError(
                "tasks", f"tasks must be distinct names from {TASK_NAMES}, got {tasks}"
            )
        object.__setattr__(self, "tasks", tuple(tasks))
        try:
            object.__setattr__(self, "methods", check_methods(self.methods))
        except ValueError as err:
            raise SettingError("methods", str(err)) from None
        self._check_sweep()
        for name in ("limit", "fit_limit", "layer", "steps", "max_new_tokens"):
            if name == "layer" and self.layer == 0:
                continue
            _positive(name, getattr(self, name), optional=True)
        _positive("gen_batch_size", self.gen_batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SettingError("seed", f"seed must be an integer, got {self.seed!r}")

    def _check_sweep(self) -> None:
        if (self.strengths is None) == (self.targets is None):
            raise SettingError("strengths", "give either strengths or targets, not both")
        if self.strengths is not None:
            try:
                object.__setattr__(self, "strengths", tuple(check_strengths(self.strengths)))
            except ValueError as err:
                raise SettingError("strengths", str(err)) from None
            return
        object.__setattr__(self, "targets", check_targets(self.targets, self.methods))
        if "truthfulqa-mc" in self.tasks:
            raise SettingError(
                "targets", "truthfulqa-mc runs strength sweeps only; use --strengths"
            )

    @property
    def settings(self) -> list[tuple[str, float]]:
        """``("strength", s)`` or ``("target", p)`` for every point of the sweep."""
        if self.targets is not None:
            return [("target", p) for p in self.targets]
        return [("strength", s) for s in self.strengths]

    def arms(self) -> list[tuple[str, tuple[str, float] | None]]:
        """``(method, setting)`` of every cell of a task; ``"none"`` once, with setting None."""
        return [(m, s) for m in self.methods for s in ((None,) if m == "none" else self.settings)]


@dataclass(frozen=True)
class DataFiles:
    """Local copies of the tasks' data (None: the Hugging Face Hub, through ``datasets``)."""

    truthfulqa_csv: str | None = None  # original TruthfulQA.csv layout
    ultrafeedback_train: str | None = None  # JSONL/CSV: prompt, chosen, rejected (+ scores)
    ultrafeedback_test: str | None = None
    jigsaw_csv: str | None = None  # Kaggle all_data.csv: comment_text, toxicity (no Hub copy)
    rtp_file: str | None = None  # JSONL/CSV of RealToxicityPrompts: prompt text and toxicity
    rtp_ppl_model: str | None = "openai-community/gpt2"  # prompt filter ppl < 200; None: off

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is None or name == "rtp_ppl_model":
                continue
            if not isinstance(value, str) or not Path(value).expanduser().is_file():
                flag = "--" + name.replace("_", "-")
                raise SettingError(name, f"{flag}: no such file {value!r}; give an existing file")

    def missing_for(self, tasks: tuple[str, ...]) -> list[str]:
        """What the tasks need that has no Hub copy (Jigsaw is a Kaggle download)."""
        if "toxicity" in tasks and self.jigsaw_csv is None:
            return [
                "toxicity fits on Jigsaw, which is not on the Hub: download all_data.csv of "
                "Kaggle's 'Jigsaw Unintended Bias in Toxicity Classification' "
                "(kaggle competitions download -c jigsaw-unintended-bias-in-toxicity-"
                "classification) and pass --jigsaw-csv all_data.csv"
            ]
        return []


@dataclass(frozen=True)
class JudgeConfig:
    """The judge of each metric (defaults: the paper's judges), where each runs, and batch size."""

    truth: str | None = "allenai/truthfulqa-truth-judge-llama2-7B"
    info: str | None = "allenai/truthfulqa-info-judge-llama2-7B"
    reward: str | None = "Skywork/Skywork-Reward-V2-Llama-3.1-8B"
    toxicity: str | None = "s-nlp/roberta_toxicity_classifier"  # or "perspective" (API key)
    toxicity_label: str = "toxic"
    perplexity: str | None = "openai-community/gpt2-xl"
    devices: dict = field(default_factory=dict)  # judge name (or "*") -> device
    batch_size: int = 8

    def __post_init__(self) -> None:
        for name in JUDGE_NAMES:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise SettingError(name, f"the {name} judge must be a model name or None")
        unknown = sorted(set(self.devices) - {*JUDGE_NAMES, "*"})
        if unknown:
            raise SettingError(
                "devices", f"unknown judge(s) {unknown} in --judge-device; use {JUDGE_NAMES}"
            )
        _positive("batch_size", self.batch_size)

    def device(self, name: str) -> str | None:
        return self.devices.get(name, self.devices.get("*"))

    def spec(self, name: str) -> dict:
        """What a judge's scores depend on (not its device or batch size)."""
        spec = {"judge": name, "model": getattr(self, name)}
        if name == "toxicity":
            spec["label"] = self.toxicity_label
        return spec


def finite_or_none(value: float) -> float | None:
    """NaN and inf become None (strict JSON)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None

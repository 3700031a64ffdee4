"""``CompareRequest``: one comparison asked for from outside (the app, its API, the CLI), bounded.

Every value of a request is hostile until checked: this module is the one place that checks
them, before any work starts, with the same ranges for the web UI, the ``/compare`` API and the
command line (the README's API section lists them). Numbers must be numbers (an integral float
such as ``10.0`` is accepted for an integer setting, ``2.5`` is refused, never truncated); text
must be valid Unicode; every bound is inclusive. What passes becomes one frozen value object
that is handed down unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from odesteer_core.lm.generate import POSITIONS
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.method.ode import SOLVERS
from odesteer_core.method.strength import MAX_STRENGTH
from odesteer_core.pipeline.steering import DEFAULT_STRENGTH, ONE_STEP_METHODS, Steering

__all__ = ["LIMITS", "MAX_PROMPT_CHARS", "MAX_SEED", "MAX_STEPS", "CompareRequest"]

MAX_STEPS = 50  # ODE solver steps per token: 50 Euler steps is already a smooth path
MAX_NEW_TOKENS = 256  # tokens per arm of one request
MAX_PROMPT_CHARS = 8000
MAX_SEED = 2**63 - 1  # torch seeds are signed 64-bit
LIMITS: dict[str, tuple[float, float]] = {  # name: (lowest, highest), both allowed
    "strength": (0.0, MAX_STRENGTH),
    "steps": (1, MAX_STEPS),
    "max_new_tokens": (1, MAX_NEW_TOKENS),
    "seed": (0, MAX_SEED),
    "temperature": (0.05, 2.0),
    "top_p": (0.05, 1.0),
    "top_k": (0, 200),
    "repetition_penalty": (1.0, 2.0),
    "layer": (-1, 1023),  # -1: the model's default layer; the model's depth is checked at fit
}
_STEERING = ("strength", "one_step", "steps", "solver", "positions", "target")
_GENERATION = (
    "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "seed",
)  # fmt: skip
_INTEGERS = {"steps", "max_new_tokens", "seed", "top_k", "layer"}
_CHOICES = {"one_step": ONE_STEP_METHODS, "solver": tuple(SOLVERS), "positions": POSITIONS}
_DEFAULTS: dict[str, object] = {
    "concept": "polite",
    "strength": DEFAULT_STRENGTH,
    "steps": 10,
    "solver": "euler",
    "one_step": "caa",
    "positions": "last",
    "target": None,  # a confidence in (0, 1): the ODESteer arm steers to it (target mode)
    "layer": -1,
    "max_new_tokens": 48,
    "do_sample": False,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 0,
    "repetition_penalty": 1.1,
    "seed": 0,
}


def _number(name: str, value: object) -> float | int:
    low, high = LIMITS[name]
    kind = "an integer" if name in _INTEGERS else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")
    if name in _INTEGERS:
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def _text(name: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} contains invalid characters (a lone surrogate)") from None
    if len(value) > max_chars:
        raise ValueError(f"{name} is {len(value)} characters; the limit is {max_chars}")
    return value


@dataclass(frozen=True)
class CompareRequest:
    """A validated comparison request: what to generate, towards which concept, and how."""

    prompt: str
    concept: str
    steering: Steering
    generation: GenerationSettings
    layer: int | None = None  # None: the model's default layer

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> CompareRequest:
        """Check raw values (from a form, a JSON call or argv) and build the request.

        Keys: ``prompt`` (required), ``concept``, ``strength``, ``steps``, ``solver``,
        ``one_step``, ``positions``, ``target``, ``layer`` (-1 = default), ``max_new_tokens``,
        ``do_sample``, ``temperature``, ``top_p``, ``top_k``, ``repetition_penalty``, ``seed``.
        Missing keys take the defaults of the app; unknown keys are refused. With ``target``
        (a confidence in (0, 1); None: off) the ODESteer arm steers each token until its
        barrier reaches ``logit(target)``: ``steps`` and ``solver`` do not apply to it then.

        Raises:
            ValueError: naming the first bad setting, its allowed range and the value given.
        """
        unknown = sorted(set(values) - {"prompt", *_DEFAULTS})
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        v = {**_DEFAULTS, **values}
        prompt = _text("prompt", v.get("prompt"), MAX_PROMPT_CHARS)
        if not prompt.strip():
            raise ValueError("The prompt is empty: type a question or instruction.")
        concept = _text("concept", v["concept"], 200).strip()
        numbers = {name: _number(name, v[name]) for name in LIMITS}
        for name, choices in _CHOICES.items():
            if v[name] not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {v[name]!r}")
        if not isinstance(v["do_sample"], bool):
            raise ValueError(f"do_sample must be true or false, got {v['do_sample']!r}")
        given = {**v, **numbers}
        if v["target"] is not None:  # target mode: the solver settings do not apply
            if isinstance(v["target"], bool) or not isinstance(v["target"], (int, float)):
                raise ValueError(f"target must be a confidence in (0, 1), got {v['target']!r}")
            given.update(steps=None, solver=None)
        steering = Steering(**{k: given[k] for k in _STEERING})
        generation = GenerationSettings(**{k: given[k] for k in _GENERATION})
        layer = None if numbers["layer"] == -1 else numbers["layer"]
        return cls(prompt, concept, steering, generation, layer)

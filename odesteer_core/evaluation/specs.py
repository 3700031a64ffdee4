"""What an evaluation runs, checked once: the ``Sweep`` of arms and the ``Scorer`` of the texts.

Each is a small frozen value object. Its ``__post_init__`` checks every field (and turns a list
into a tuple); an invalid field raises ``SettingError``, a ``ValueError`` that names the field, so
the command line can report it under its own option. Nothing below re-checks them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from odesteer_core.concepts.concept import Concept
from odesteer_core.lm.generate import Arm
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.method.checks import check_steps
from odesteer_core.method.ode import check_solver
from odesteer_core.method.registry import STEERERS
from odesteer_core.method.strength import check_strength, relative_to_T
from odesteer_core.pipeline import FittedConcept, fit_concept

__all__ = [
    "EVAL_STRENGTH",
    "MC_METHODS",
    "check_targets",
    "has_target_mode",
    "Scorer",
    "SettingError",
    "Sweep",
    "check_layer_index",
    "check_methods",
    "check_strengths",
    "check_writable",
]

# The evaluations' default relative strength, kept apart from the app's ``DEFAULT_STRENGTH``
# (chosen on the demo model): results of the evaluation protocol stay comparable across versions.
EVAL_STRENGTH = 0.2

MC_METHODS = ("none", "caa", "iti", "repe", "step_odesteer", "odesteer")

ArmKey = tuple[str, float | None]  # (method, strength or target); "none" has None


class SettingError(ValueError):
    """An invalid evaluation setting; ``field`` names it (the CLI shows its option instead)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Validate method names: ``"none"`` or keys of ``STEERERS``, distinct, at least one."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    valid = ("none", *sorted(STEERERS))
    bad = [m for m in methods if m not in valid]
    if bad or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names from {list(valid)}, got {list(methods)}")
    return tuple(methods)


def check_strengths(strengths: Sequence[float], name: str = "strength") -> list[float]:
    """Validate relative strengths: at least one, distinct, each as ``check_strength`` wants."""
    if isinstance(strengths, (str, bytes)) or not isinstance(strengths, Sequence) or not strengths:
        raise ValueError(f"give at least one {name} (a list of numbers), got {strengths!r}")
    checked = [check_strength(s, name) for s in strengths]
    if len(set(checked)) != len(checked):
        raise ValueError(f"each {name} once, please: got {checked}")
    return checked


def has_target_mode(method: str) -> bool:
    """Whether the method's ``steer`` takes ``target=p`` (a target confidence of its barrier)."""
    cls = STEERERS[method]
    return cls.has_barrier and "target" in inspect.signature(cls.steer).parameters


def check_targets(targets: object, methods: Sequence[str]) -> tuple[float, ...]:
    """Validate target confidences: at least one, distinct, each in (0, 1); and every steered
    method of ``methods`` must have a target mode. ``SettingError`` on the field ``targets``."""
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
        raise SettingError("targets", f"targets are a list of numbers in (0, 1), got {targets!r}")
    ok = all(not isinstance(p, bool) and isinstance(p, (int, float)) and 0 < p < 1 for p in targets)
    if not targets or not ok or len(set(targets)) != len(targets):
        raise SettingError("targets", f"targets are distinct numbers in (0, 1), got {targets}")
    without = [m for m in methods if m != "none" and not has_target_mode(m)]
    if without:
        raise SettingError(
            "targets",
            f"{', '.join(without)} cannot steer to a target confidence: target mode "
            "(steer(x, target=p)) needs a barrier method whose steer takes target=; "
            "use --strengths for these methods, or --methods with target-mode methods only",
        )
    return tuple(float(p) for p in targets)


def check_layer_index(layer: object) -> int | None:
    """None (the model's default layer) or a 0-based decoder layer; the model checks the top."""
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise ValueError(f"layer must be a decoder layer index >= 0 (or None), got {layer!r}")
    return layer


def check_writable(path: str | Path, name: str = "out") -> Path:
    """``path`` as a ``Path`` if a file can be written there (missing folders get made)."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder; give a file path")
    folder = target.parent
    while not folder.exists():  # the nearest folder that exists: the others are made
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {name} {str(path)!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ValueError(f"cannot write {name} {str(path)!r}: permission denied")
    return target


def _checked(field: str, check: Callable[[object], object], value: object) -> object:
    try:
        return check(value)
    except (ValueError, TypeError) as err:
        raise SettingError(field, str(err)) from None


def _batch_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"batch_size must be a positive int, got {value!r}")
    return value


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"seed must be an int, got {value!r}")
    return value


@dataclass(frozen=True)
class Sweep:
    """Every method at every relative strength (or target confidence): the arms an evaluation
    compares, and how they run.

    ``"none"`` (unsteered) is one arm whatever the sweep; every other method is one arm per
    strength, and each strength gives one table of the results. With ``targets``, the sweep's
    points are target confidences instead (``kind == "target"``): each steered arm moves every
    token only until its barrier reaches ``logit(p)`` (``BarrierSteerer.steer_to_target``), at
    most as far as the largest of ``strengths`` would move it (the app's rule); every steered
    method must have a target mode, and ``steps``/``solver`` stay unset (the flow stops on its own).
    """

    methods: tuple[str, ...] = MC_METHODS  # "none" and/or STEERERS names, distinct
    strengths: tuple[float, ...] = (EVAL_STRENGTH,)  # relative strengths (relative_to_T)
    targets: tuple[float, ...] | None = None  # target confidences in (0, 1), or None
    layer: int | None = None  # decoder layer steered (None: about 40 % of depth)
    steps: int | None = None  # ODE methods' solver steps (None: the steerer's own, 10)
    solver: str | None = None  # euler, midpoint or rk4 (None: the steerer's own, euler)
    seed: int = 0  # seed of the TruthfulQA 2-fold split, the fits and (by default) sampling
    batch_size: int = 8  # rows per forward pass when scoring

    def __post_init__(self) -> None:
        fields = {
            "methods": check_methods,
            "strengths": lambda v: tuple(check_strengths(v)),
            "layer": check_layer_index,
            "steps": lambda v: v if v is None else check_steps(v),
            "solver": lambda v: v if v is None else check_solver(v),
            "seed": _seed,
            "batch_size": _batch_size,
        }
        for name, check in fields.items():
            object.__setattr__(self, name, _checked(name, check, getattr(self, name)))
        if self.targets is not None:
            object.__setattr__(self, "targets", check_targets(self.targets, self.methods))
            for name in ("steps", "solver"):
                if getattr(self, name) is not None:
                    raise SettingError(
                        name, f"a target sweep takes no {name}: the flow stops on its own"
                    )

    @property
    def kind(self) -> str:
        """``"strength"`` or ``"target"``: what the sweep's points are (and the rows' key)."""
        return "strength" if self.targets is None else "target"

    @property
    def points(self) -> tuple[float, ...]:
        """The strengths, or the targets of a target sweep: one table each."""
        return self.strengths if self.targets is None else self.targets

    @property
    def steered(self) -> tuple[str, ...]:
        """The methods that steer (all but ``"none"``)."""
        return tuple(m for m in self.methods if m != "none")

    def arm_keys(self) -> list[ArmKey]:
        """``(method, point)`` of every arm, in order; ``"none"`` once, with point None."""
        return [(m, s) for m in self.methods for s in ((None,) if m == "none" else self.points)]

    def tables(self, results: Callable[[str, float | None], dict]) -> list[dict]:
        """``[{kind: point, "results": {method: results(method, point)}}]``, one table per
        point (``kind``: "strength" or "target"); ``"none"`` (point None) is in every table."""
        return [
            {
                self.kind: s,
                "results": {m: results(m, None if m == "none" else s) for m in self.methods},
            }
            for s in self.points
        ]

    def layer_of(self, lm: LoadedLM) -> int:
        """The steered layer of this model (its default when ``layer`` is None)."""
        return lm.default_layer() if self.layer is None else lm.check_layer(self.layer)

    def fit(
        self, lm: LoadedLM, concept: Concept, *, progress: bool = True, cache_dir: str | None = None
    ) -> FittedConcept:
        """Fit the steered methods on ``concept`` at this sweep's layer, with its seed."""
        return fit_concept(
            lm,
            concept,
            layer=self.layer_of(lm),
            methods=self.steered,
            progress=progress,
            cache_dir=cache_dir,
            seed=self.seed,
        )

    def arms(self, fitted: FittedConcept | None) -> dict[ArmKey, Arm]:
        """One ``Arm`` per key: the ``T`` of its relative strength under ``fitted``, or its target
        confidence, capped at the ``T`` of the largest strength."""
        arms = {}
        for method, point in self.arm_keys():
            if point is None:
                arms[(method, point)] = Arm("none")
                continue
            steerer = fitted.steerer(method)
            if self.targets is not None:
                cap = relative_to_T(steerer, max(self.strengths))
                arms[(method, point)] = Arm(f"{method}->{point:g}", steerer, cap, target=point)
                continue
            T = relative_to_T(steerer, point)
            arm = Arm(f"{method}@{point:g}", steerer, T, steps=self.steps, solver=self.solver)
            arms[(method, point)] = arm
        return arms


@dataclass(frozen=True)
class Scorer:
    """A text-classification or reward model that scores every generated text (see
    ``classifier_scores``)."""

    model: str  # Hub id or local folder of a sequence-classification model
    label: str | None = None  # label whose probability is the score; None: a reward model's logit
    pairs: bool = False  # score (prompt, text) pairs instead of the text alone (reward models)
    device: str | None = None  # where it runs (None: the evaluated model's device)

    def __post_init__(self) -> None:
        for name in ("model", "label", "device"):
            value, optional = getattr(self, name), name != "model"
            if (value is None and not optional) or (
                value is not None and (not isinstance(value, str) or not value.strip())
            ):
                hint = " or None" if optional else " (a Hub id or local folder)"
                raise SettingError(name, f"the scorer's {name} must be a name{hint}, got {value!r}")
        if not isinstance(self.pairs, bool):
            raise SettingError("pairs", f"pairs must be True or False, got {self.pairs!r}")

"""``Steering``: how the steered arms of one comparison move activations, validated once.

One value object carries every steering setting of a request from its entry (the app, the API,
the CLI, a script) down to ``compare``; nothing below re-checks it per token or per arm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from odesteer_core.lm.generate import POSITIONS
from odesteer_core.lm.records import ARM_NAMES
from odesteer_core.method.checks import check_steps, check_T
from odesteer_core.method.ode import check_solver
from odesteer_core.method.strength import check_strength
from odesteer_core.method.target import check_target

__all__ = ["DEFAULT_STRENGTH", "ONE_STEP_METHODS", "Steering"]

ONE_STEP_METHODS = ("caa", "iti", "repe", "step_odesteer", "linear_act")
# 0.3 of the median activation norm: on the demo model (benchmarks/README.md, "Demo model") the
# largest strength at which CAA and ODESteer replies stay fluent (perplexity under the unsteered
# model within 1.2x) while ODESteer clearly moves them (VADER +0.46 over unsteered at 0.3; 0.5
# multiplies perplexity by 6).
DEFAULT_STRENGTH = 0.3


@dataclass(frozen=True)
class Steering:
    """The steered arms' settings. Invalid values raise ``ValueError``/``TypeError`` at once.

    ``strength`` is relative (``method.strength.relative_to_T``): every arm moves activations by
    ``strength`` times the median activation norm at the steered layer, so the arms are on equal
    footing. ``T`` instead sets one absolute horizon for every arm (units differ per method, see
    ``method/registry.py``) and makes ``strength`` ignored.

    ``target=p`` puts the ODESteer arm in target mode: each token's activation moves only until
    the barrier reaches ``logit(p)`` (``BarrierSteerer.steer_to_target``; tokens already there
    are not moved), and never further than ``strength`` would move it: the same budget as the
    one-step arm, spent only where needed. A token that cannot reach the level within it stops
    there (the readouts count them). ``target`` excludes ``T``, ``steps`` and ``solver``.
    """

    strength: float = DEFAULT_STRENGTH  # fraction of the median activation norm
    T: float | None = None  # absolute horizon for every arm; overrides strength
    one_step: str = "caa"  # method of the one-step arm: one of ONE_STEP_METHODS
    steps: int | None = None  # ODESteer's solver steps (None: the steerer's own, 10)
    solver: str | None = None  # euler, midpoint or rk4 (None: the steerer's own, euler)
    arms: tuple[str, ...] = ARM_NAMES  # which arms run, a subset of ARM_NAMES
    positions: str = "last"  # "last" or "from_prompt_end" (see lm.generate)
    target: float | None = None  # ODESteer arm: steer to this confidence instead of a strength

    def __post_init__(self) -> None:
        if self.one_step not in ONE_STEP_METHODS:
            raise ValueError(
                f"unknown one-step method {self.one_step!r}; valid: {', '.join(ONE_STEP_METHODS)}"
            )
        arms = tuple(self.arms)
        if not arms or len(set(arms)) != len(arms) or any(a not in ARM_NAMES for a in arms):
            raise ValueError(f"arms must be distinct names from {ARM_NAMES}, got {list(arms)}")
        object.__setattr__(self, "arms", arms)
        if self.T is None:
            object.__setattr__(self, "strength", check_strength(self.strength))
        else:
            object.__setattr__(self, "T", check_T(self.T))
        if self.steps is not None:
            check_steps(self.steps)
        if self.solver is not None:
            check_solver(self.solver)
        if self.target is not None:
            object.__setattr__(self, "target", check_target(self.target))
            if self.T is not None or self.steps is not None or self.solver is not None:
                raise ValueError(
                    "give either a target confidence or a horizon T (with steps/solver), not "
                    "both: the ODESteer arm integrates until the barrier reaches logit(target)"
                )
        if self.positions not in POSITIONS:
            raise ValueError(f"unknown positions {self.positions!r}; valid: {POSITIONS}")

    def to_dict(self) -> dict:
        return {**asdict(self), "arms": list(self.arms)}

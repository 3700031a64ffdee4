"""One row of a batched generation (``Arm``) and what a request of arms costs, checked up front.

An arm is a steerer and its horizon (or none: the unsteered row). Its cost is the number of
evaluations of its steering field per steered position (solver steps x evaluations per step);
``check_budget`` refuses a request above ``MAX_FIELD_EVALUATIONS`` before any forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from odesteer_core.method.base import Steerer
from odesteer_core.method.checks import check_steps, check_T
from odesteer_core.method.ode import check_solver
from odesteer_core.method.target import check_target

__all__ = [
    "EVALUATIONS_PER_STEP",
    "MAX_FIELD_EVALUATIONS",
    "Arm",
    "check_budget",
    "field_evaluations",
]

EVALUATIONS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}  # field evaluations per solver step
# Evaluations of the steering fields one request may need, over all its arms and positions: twice
# the app's largest ODESteer arm (50 rk4 steps for each of 256 tokens), which leaves room for its
# one-step arm and for the few prompt positions that ``positions="from_prompt_end"`` steers.
MAX_FIELD_EVALUATIONS = 2 * 50 * 4 * 256


@dataclass(frozen=True)
class Arm:
    """One row of the comparison: a steerer and its horizon (``steerer=None``: unsteered).

    ``target=p`` (steerers with a barrier): each steered position moves only until the barrier
    reaches ``logit(p)`` (``BarrierSteerer.steer_to_target``), and at most ``T`` (path length;
    0: nothing moves); ``steps`` and ``solver`` must then be left unset.
    """

    name: str
    steerer: Steerer | None = None
    T: float = 0.0
    steps: int | None = None  # ODE methods: override the steerer's own
    solver: str | None = None
    target: float | None = None  # steer to this confidence instead of a horizon

    def __post_init__(self) -> None:
        check_T(self.T)
        if self.target is not None:
            object.__setattr__(self, "target", check_target(self.target))
            if self.steerer is None or not self.steerer.has_barrier:
                raise ValueError("a target confidence needs a steerer with a barrier (odesteer)")
            if self.steps is not None or self.solver is not None:
                raise ValueError("a target arm takes no steps or solver: it stops on its own")
        if self.steps is not None:
            check_steps(self.steps)
        if self.solver is not None:
            check_solver(self.solver)
        if self.steerer is not None and not self.steerer.is_fitted:
            self.steerer._require_fit()

    @property
    def n_steps(self) -> int:
        if self.steerer is None:
            return 0
        if self.target is not None:
            return 0  # as many as each position needs (``ArmRecord.paths`` has them)
        if not self.steerer.is_ode:
            return 1
        return self.steps if self.steps is not None else self.steerer.steps

    @property
    def solver_name(self) -> str:
        """The solver the arm runs: its own, else its steerer's (one-step methods: Euler)."""
        if self.steerer is None or not self.steerer.is_ode:
            return "euler"
        return self.solver if self.solver is not None else getattr(self.steerer, "solver", "euler")

    @property
    def evaluations(self) -> int:
        """Evaluations of the steering field per steered position (0: nothing moves)."""
        if self.steerer is None or self.T == 0.0:
            return 0
        if self.target is not None:
            return self.steerer.target_evaluations()
        return self.n_steps * EVALUATIONS_PER_STEP[self.solver_name]


def field_evaluations(arms: list[Arm], tokens: int, prefill_positions: int = 1) -> int:
    """Evaluations of the steering fields that ``tokens`` new tokens per arm need at most.

    Each arm evaluates its field ``steps x EVALUATIONS_PER_STEP[solver]`` times per steered
    position; the prefill steers ``prefill_positions`` positions (1 with ``positions="last"``),
    each later forward call one.
    """
    return sum(arm.evaluations for arm in arms) * (prefill_positions + tokens - 1)


def check_budget(arms: list[Arm], tokens: int, prefill_positions: int) -> None:
    total = field_evaluations(arms, tokens, prefill_positions)
    if total <= MAX_FIELD_EVALUATIONS:
        return
    costs = "; ".join(_cost(arm) for arm in arms if arm.evaluations)
    prompt = f" + {prefill_positions - 1} prompt position(s)" if prefill_positions > 1 else ""
    raise ValueError(
        f"this request needs {total:,} evaluations of the steering field, above the limit of "
        f"{MAX_FIELD_EVALUATIONS:,} per request ({costs}; at each of "
        f"{prefill_positions + tokens - 1} steered positions: max_new_tokens={tokens}{prompt}); "
        "ask for fewer tokens or solver steps, or a cheaper solver"
    )


def _cost(arm: Arm) -> str:
    if arm.target is not None:
        return f"{arm.name}: up to {arm.evaluations} evaluation(s) to reach target {arm.target}"
    return (
        f"{arm.name}: {arm.n_steps} {arm.solver_name} step(s) of "
        f"{EVALUATIONS_PER_STEP[arm.solver_name]} evaluation(s)"
    )

"""Fixed-step ODE solvers for autonomous fields ``dx/dt = f(x)`` on ``[0, T]``.

One functional entry point, ``integrate``; solvers chosen by name from ``SOLVERS``. The solution on
the time grid ``t_k = k T / steps`` *is* the trajectory, returned whole: (steps + 1, batch, d).
Euler with one step is exactly activation addition ``x + T f(x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["SOLVERS", "integrate", "integrate_with_values"]

Field = Callable[[torch.Tensor], torch.Tensor]
ValuedField = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _euler(f: Field, x: torch.Tensor, dt: float) -> torch.Tensor:
    return x + dt * f(x)


def _midpoint(f: Field, x: torch.Tensor, dt: float) -> torch.Tensor:
    return x + dt * f(x + 0.5 * dt * f(x))


def _rk4(f: Field, x: torch.Tensor, dt: float) -> torch.Tensor:
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


# name -> (one step of the method, order of accuracy)
SOLVERS: dict[str, tuple[Callable[[Field, torch.Tensor, float], torch.Tensor], int]] = {
    "euler": (_euler, 1),
    "midpoint": (_midpoint, 2),
    "rk4": (_rk4, 4),
}


def check_solver(solver: object) -> str:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers: {sorted(SOLVERS)}")
    return solver  # type: ignore[return-value]


def integrate(f: Field, x0: torch.Tensor, T: float, *, steps: int, solver: str) -> torch.Tensor:
    """Integrate ``dx/dt = f(x)`` from ``x0`` (batch, d) over ``[0, T]``.

    Returns:
        The trajectory at ``t_k = k T / steps``: (steps + 1, batch, d); index 0 is ``x0``.
    """
    step = SOLVERS[check_solver(solver)][0]
    dt = T / steps
    path = [x0]
    for _ in range(steps):
        path.append(step(f, path[-1], dt))
    return torch.stack(path)


def integrate_with_values(
    f: ValuedField,
    x0: torch.Tensor,
    T: float,
    *,
    steps: int,
    solver: str,
    value: Field | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``integrate`` for a field that also returns a value per row, e.g. the barrier ``h``.

    ``f(x)`` returns ``(velocity (batch, d), value (batch,))``. Every solver evaluates the field at
    the start point ``x_k`` of each step, so the values at ``x_0 .. x_{K-1}`` come free with the
    path; only the end point costs one more evaluation, of ``value(x)`` when given (no velocity).

    Returns:
        The trajectory (steps + 1, batch, d) as ``integrate`` gives it, and the value at each of its
        points (steps + 1, batch).
    """
    step = SOLVERS[check_solver(solver)][0]
    dt = T / steps
    path: list[torch.Tensor] = [x0]
    values: list[torch.Tensor] = []

    def field(x: torch.Tensor) -> torch.Tensor:
        velocity, value_x = f(x)
        if x is path[-1] and len(values) < len(path):  # the evaluation at the step's start
            values.append(value_x)
        return velocity

    for _ in range(steps):
        start = path[-1]
        path.append(step(field, start, dt))
        if len(values) < len(path) - 1:  # a solver that did not evaluate at x_k itself
            values.append(f(start)[1])
    values.append(value(path[-1]) if value is not None else f(path[-1])[1])
    return torch.stack(path), torch.stack(values)

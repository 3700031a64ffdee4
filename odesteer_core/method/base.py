"""The ``Steerer`` base class: the contract every steering method in ``registry.py`` keeps.

An estimator (``__init__`` stores hyper-parameters, ``fit`` returns ``self`` and sets attributes
ending in ``_``) whose subclasses define a velocity field ``v(x)``; the base class moves along it:
one Euler step for one-step methods, a fixed-step ODE solve (``ode.py``) for ODE methods. Inputs
are validated once here; work is done in float32 whatever the input dtype.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import torch

from odesteer_core.method.checks import (
    NotFittedError,
    check_activations,
    check_pair,
    check_steps,
    check_T,
)
from odesteer_core.method.ode import check_solver, integrate

__all__ = ["Steerer"]


def unit_rows(v: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit norm; zero rows stay zero (a flat field means: do not move)."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-30)  # a zero row is 0 / 1e-30 = 0


def _no_target(steerer: Steerer, target: object, max_T: object) -> None:
    """Target mode needs a barrier; ``max_T`` is its horizon and means nothing without it."""
    if target is not None:
        raise TypeError(
            f"{steerer.name} has no barrier, so it cannot steer to a target confidence; use "
            "odesteer, step_odesteer, odesteer_paper or iti, or give a horizon T"
        )
    if max_T is not None:
        raise ValueError("max_T is the horizon of target mode; give target= too")


class Steerer:
    """Base class. Subclasses set ``name`` and implement ``_fit`` and ``velocity``."""

    name: ClassVar[str]
    is_ode: ClassVar[bool] = False
    has_barrier: ClassVar[bool] = False

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = int(seed)

    # -- estimator plumbing ----------------------------------------------------------------
    def get_params(self) -> dict:
        """Hyper-parameters as given to ``__init__`` (JSON-able)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "d_")

    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.name} steerer is not fitted yet; call .fit(pos, neg) first"
            )

    def fit(self, pos: torch.Tensor, neg: torch.Tensor) -> Steerer:
        """Fit on positive (N, d) and negative (M, d) activations; returns ``self``."""
        pos, neg = check_pair(pos, neg)
        pos, neg = pos.float(), neg.float()
        self._fit(pos, neg)
        self.d_ = pos.shape[1]
        self.median_norm_ = float(torch.cat([pos, neg]).norm(dim=1).median())
        self.speed_ = self._speed(neg)
        return self

    def _fit(self, pos: torch.Tensor, neg: torch.Tensor) -> None:
        raise NotImplementedError

    def _speed(self, neg: torch.Tensor) -> float:
        """Typical |v| on the negatives: 1 for unit-speed fields."""
        return 1.0

    def velocity(self, x: torch.Tensor) -> torch.Tensor:
        """The field ``v(x)`` for float32 (B, d) ``x`` on the steerer's device."""
        raise NotImplementedError

    # -- steering --------------------------------------------------------------------------
    def _prepare(self, x: object) -> torch.Tensor:
        self._require_fit()
        x = check_activations(x, "x", d=self.d_)
        if x.device != self.device:
            self.to(x.device)  # small tensors follow the data (e.g. the hooked layer's device)
        return x

    def _resolve(self, steps: int | None, solver: str | None) -> tuple[int, str]:
        if steps is not None:
            check_steps(steps)
        if solver is not None:
            check_solver(solver)
        return 1, "euler"

    def _arguments(
        self, x: object, T: object, steps: int | None, solver: str | None
    ) -> tuple[torch.Tensor, float, int, str]:
        """The validated arguments of ``steer``/``trajectory``, steerer moved to x's device."""
        if T is None:
            raise TypeError(f"{self.name}: give a horizon T (or, with a barrier, target=p)")
        return (self._prepare(x), check_T(T), *self._resolve(steps, solver))

    def flow(
        self,
        x: torch.Tensor,
        T: float,
        steps: int,
        solver: str,
        *,
        values: bool = False,
        target: float | None = None,
        max_T: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The path from ``x`` with checked arguments: the hot path, e.g. once per token.

        ``x`` is float32 (B, d) on the steerer's device, ``T`` a float, ``steps``/``solver`` as
        ``_resolve`` returns them; nothing is validated or converted here. Returns the path
        (K + 1, B, d) float32 and, with ``values``, the barrier at its points (K + 1, B) (only
        steerers with a barrier), else None. ``target``/``max_T``: target mode (barrier steerers).
        """
        _no_target(self, target, max_T)
        if values:
            raise TypeError(f"{self.name} has no barrier function to evaluate along its path")
        return integrate(self.velocity, x, T, steps=steps, solver=solver), None

    def trajectory(
        self,
        x: torch.Tensor,
        T: float | None = None,
        *,
        steps: int | None = None,
        solver: str | None = None,
        target: float | None = None,
        max_T: float | None = None,
    ) -> torch.Tensor:
        """The path from ``x`` (B, d): (K + 1, B, d) in x's dtype; K = 1 for one-step methods.

        ``target``: steer to a confidence instead of a horizon (methods with a barrier only)."""
        _no_target(self, target, max_T)
        x, T, steps, solver = self._arguments(x, T, steps, solver)
        if T == 0.0:
            return x.unsqueeze(0).repeat(steps + 1, 1, 1)  # exact identity, no float round trip
        return self.flow(x.float(), T, steps, solver)[0].to(x.dtype)

    def steer(
        self,
        x: torch.Tensor,
        T: float | None = None,
        *,
        steps: int | None = None,
        solver: str | None = None,
        target: float | None = None,
        max_T: float | None = None,
    ) -> torch.Tensor:
        """Steered activations (B, d) in x's dtype and device; ``T = 0`` returns ``x`` exactly.

        ``target=p``: move each row only until the barrier reaches ``logit(p)`` instead
        (methods with a barrier only; ``steer_to_target``)."""
        _no_target(self, target, max_T)
        x, T, steps, solver = self._arguments(x, T, steps, solver)
        if T == 0.0:
            return x.clone()
        end = self.flow(x.float(), T, steps, solver)[0][-1]
        return end if x.dtype == torch.float32 else end.to(x.dtype)

    def barrier(self, x: torch.Tensor) -> torch.Tensor:
        """Estimated ``log p+(x) / p-(x)``: (B,) float32 on x's device."""
        raise TypeError(
            f"{self.name} has no barrier function; use odesteer, step_odesteer or iti, "
            "or score with a fitted odesteer steerer"
        )

    # -- devices and persistence -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        self._require_fit()
        return next(iter(self._tensors()[0].values())).device

    def to(self, device: torch.device | str) -> Steerer:
        tensors, _ = self._tensors()
        for name, value in tensors.items():
            setattr(self, name, value.to(device))
        return self

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Fitted tensors by attribute name, and fitted scalars (JSON-able)."""
        raise NotImplementedError

    # What ``fitted_state`` holds, checked when a file is loaded (``persistence.py``): each fitted
    # tensor's shape in terms of the width "d" (float32), and each fitted scalar's kind.
    tensor_shapes: ClassVar[dict[str, tuple[str, ...]]] = {}
    scalar_kinds: ClassVar[dict[str, str]] = {
        "d_": "width",
        "median_norm_": "nonnegative",
        "speed_": "nonnegative",
    }

    def state_spec(self, d: int) -> tuple[dict, dict[str, str], dict[str, int]]:
        """For width ``d``: tensor name -> (shape in size names, kind), scalar name -> kind, and
        the sizes by name. ``load_steerer`` accepts a file holding exactly this."""
        tensors = {name: (shape, "float") for name, shape in self.tensor_shapes.items()}
        return tensors, dict(self.scalar_kinds), {"d": d}

    def fitted_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        self._require_fit()
        tensors, scalars = self._tensors()
        scalars = {**scalars, "d_": self.d_, "median_norm_": self.median_norm_}
        return tensors, {**scalars, "speed_": self.speed_}

    def load_fitted_state(self, tensors: dict[str, torch.Tensor], scalars: dict) -> None:
        for name, value in {**tensors, **scalars}.items():
            setattr(self, name, value)

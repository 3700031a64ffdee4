"""Methods that move along the normalised gradient of a fitted barrier ``h = log p+/p-``.

ITI (one step along a linear probe), StepODESteer (one Euler step of the ODESteer field), ODESteer
(the field integrated over ``[0, T]``) and ODESteerPaper (ODESteer with the paper's settings).
See ``docs/method.md`` for the maths.
"""

from __future__ import annotations

import math

import torch

from odesteer_core.method.barrier import Barrier
from odesteer_core.method.base import Steerer, unit_rows
from odesteer_core.method.calibration import CalibrationReport
from odesteer_core.method.checks import check_T
from odesteer_core.method.features import Identity
from odesteer_core.method.flows import linear_euler_flow, quadratic_euler_flow
from odesteer_core.method.ode import integrate, integrate_with_values
from odesteer_core.method.selection import (
    SearchSpace,
    kernel_scale,
    select_barrier,
)
from odesteer_core.method.target import (
    TargetResult,
    TargetSettings,
    check_target,
    target_flow,
    target_level,
)

__all__ = ["ITI", "BarrierSteerer"]

TARGET_STEP_ANGLE = 0.05  # target mode: Euler step = 0.05 |a - mu| (a 0.05 rad turn) ...
TARGET_MAX_TURN = math.pi  # ... and at most half a turn around mu: max_T = pi |a - mu|
TARGET_MAX_NORMS, TARGET_STEPS = 2.0, 32  # unnormalised barriers: 2 median norms in 32 steps


class BarrierSteerer(Steerer):
    """Moves along the normalised barrier gradient ``v = grad h / |grad h|``."""

    has_barrier = True
    searched: tuple[str, ...] = ()

    def _make_barrier(self) -> Barrier:
        raise NotImplementedError

    def _space(self) -> SearchSpace:
        raise NotImplementedError

    def _fit(self, pos, neg):
        self.chosen_ = None
        self.report_ = select_barrier(pos, neg, self._space(), self.seed)
        self.chosen_ = dict(self.report_.chosen)
        self.barrier_ = self._make_barrier().fit(pos, neg)

    def load_report(self, data: object) -> None:
        """Set ``report_`` (and the chosen settings) from a saved report; checked first.

        A steerer whose settings were searched needs its report to rebuild its barrier; for
        fixed settings a file without one (written before reports existed) loads with
        ``report_ = None``."""
        self.chosen_ = self.report_ = None
        if data is None:
            if self.searched:
                raise ValueError(f"missing 'report': {self.name} chose {list(self.searched)}")
            return
        report = CalibrationReport.from_dict(data)
        if report.searched != list(self.searched):
            raise ValueError(f"report 'searched' {report.searched} != {list(self.searched)}")
        space, chosen = self._space(), report.chosen
        normalize = chosen.get("normalize", space.normalizes[0])
        ok = chosen["features"] in space.features and chosen["center"] in space.centers
        ok = ok and normalize in space.normalizes
        fs = (chosen["features"], chosen["degree"], chosen["gamma"], chosen["center"], normalize)
        scale = kernel_scale(fs, space)
        ok = ok and any(math.isclose(chosen["C"], C / scale, rel_tol=1e-9) for C in space.Cs)
        if chosen["features"] != "linear":
            ok = ok and chosen["gamma"] in space.gammas
            ok = ok and chosen["n_components"] == space.n_components
        if chosen["features"] == "tensor_sketch":
            ok = ok and chosen["degree"] in space.degrees
        if not ok:
            raise ValueError(f"report 'chosen' {chosen} is not among {self.name}'s candidates")
        self.report_, self.chosen_ = report, dict(chosen)

    def _velocity_and_value(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, grad = self.barrier_.value_and_grad(x)
        return unit_rows(grad), h

    def _value(self, x: torch.Tensor) -> torch.Tensor:
        return self.barrier_.value_and_grad(x.float(), need_grad=False)[0]

    def velocity(self, x):
        return self._velocity_and_value(x)[0]

    def barrier(self, x):
        return self._value(self._prepare(x))

    def flow(self, x, T, steps, solver, *, values=False, target=None, max_T=None):
        """As ``Steerer.flow``; with ``target`` (a probability, unchecked) ``T``, ``steps`` and
        ``solver`` are ignored and the path is the target flow's, padded (``steer_to_target``)."""
        if target is not None:
            result = self._target(x, target, max_T, keep_path=True)
            return result.path, result.values if values else None
        if solver == "euler":  # the lean loops of flows.py where the barrier's form allows
            linear = self.barrier_.linear()
            if linear is not None:  # no matrix: row reductions only
                return linear_euler_flow(linear, x, T, steps, values=values)
            quadratic = self.barrier_.quadratic()
            if quadratic is not None:  # the default sketch: one matrix product per step
                return quadratic_euler_flow(quadratic, x, T, steps, values=values)
        if not values:
            return integrate(self.velocity, x, T, steps=steps, solver=solver), None
        return integrate_with_values(
            self._velocity_and_value, x, T, steps=steps, solver=solver, value=self._value
        )

    # -- steering to a confidence (target.py) -------------------------------------------------
    def _target(self, x, target, max_T, *, keep_path=False) -> TargetResult:
        """The target flow from float32 ``x`` on the steerer's device (arguments checked)."""
        b = self.barrier_
        level = target_level(target)
        if b.normalize:  # the flow turns a - mu about mu: steps and horizon scale with |a - mu|
            radius = (x - b.mean_).norm(dim=1)
            dt = TARGET_STEP_ANGLE * radius
            horizon = TARGET_MAX_TURN * radius  # at most half a turn: h's best on the circle
            if max_T is not None:
                horizon = horizon.clamp(max=max_T)
        else:
            T = TARGET_MAX_NORMS * self.median_norm_ if max_T is None else max_T
            horizon = x.new_full((len(x),), T)
            dt = horizon / TARGET_STEPS
        settings = TargetSettings(level=level, keep_path=keep_path)
        return target_flow(b.value_and_grad, self._value, x, dt, horizon, settings)

    def target_evaluations(self) -> int:
        """At most this many evaluations of ``h`` or its gradient per row of a target flow:
        one field and one value per Euler step, the first value and the crossing's search. The
        generation budget (``lm.arms``) counts with it."""
        normalize = self.barrier_.normalize if self.is_fitted else True
        steps = math.ceil(TARGET_MAX_TURN / TARGET_STEP_ANGLE) if normalize else TARGET_STEPS
        return 1 + 2 * steps + TargetSettings.max_refine

    def _target_arguments(self, x, target, max_T, T, steps, solver):
        if T is not None or steps is not None or solver is not None:
            raise ValueError(
                "give either a horizon T (with steps/solver) or a target confidence, not both: "
                "target mode integrates each row until its barrier reaches logit(target), up to "
                "max_T"
            )
        target = check_target(target)
        if max_T is not None and not check_T(max_T) > 0:
            raise ValueError(f"max_T must be > 0, got {max_T}")
        return self._prepare(x), target, None if max_T is None else float(max_T)

    def steer_to_target(
        self, x: torch.Tensor, target: float, *, max_T: float | None = None, path: bool = False
    ) -> TargetResult:
        """Move each row of ``x`` along the flow until ``h = logit(target)`` (docs/method.md
        section 11): rows already there are returned bit for bit, the others land on the level
        within 1e-3, or stop at the horizon unreached (path length: ``max_T``, at most half a
        turn about the centre, ``pi |a - mu|``, for normalised barriers, which is also the
        default; else ``max_T``, default 2 median norms).
        With ``path``, also the padded path and its barrier values (``TargetResult``)."""
        x, target, max_T = self._target_arguments(x, target, max_T, None, None, None)
        result = self._target(x.float(), target, max_T, keep_path=path)
        moved = result.steps > 0
        result.x = torch.where(moved[:, None], result.x.to(x.dtype), x)
        if path:
            result.path = torch.where(moved[None, :, None], result.path.to(x.dtype), x)
        return result

    def steer(self, x, T=None, *, steps=None, solver=None, target=None, max_T=None):
        """``Steerer.steer``; or, with ``target=p``, ``steer_to_target(x, p).x``."""
        if target is None:
            return super().steer(x, T, steps=steps, solver=solver, max_T=max_T)
        self._target_arguments(x, target, max_T, T, steps, solver)
        return self.steer_to_target(x, target, max_T=max_T).x

    def trajectory(self, x, T=None, *, steps=None, solver=None, target=None, max_T=None):
        """``Steerer.trajectory``; with ``target=p``, the padded target path (K + 1, B, d)."""
        if target is None:
            return super().trajectory(x, T, steps=steps, solver=solver, max_T=max_T)
        self._target_arguments(x, target, max_T, T, steps, solver)
        return self.steer_to_target(x, target, max_T=max_T, path=True).path

    def trajectory_with_barrier(
        self,
        x: torch.Tensor,
        T: float | None = None,
        *,
        steps: int | None = None,
        solver: str | None = None,
        target: float | None = None,
        max_T: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``trajectory(x, T)`` and the barrier at each of its points: (K + 1, B) float32.

        Cheaper than ``barrier`` on the path: each step's field evaluation computes ``h`` at the
        step's start anyway, so only the end point costs one more evaluation. Values are taken
        at the float32 points of the integration. With ``target``, the padded target path.
        """
        if target is not None:
            self._target_arguments(x, target, max_T, T, steps, solver)
            result = self.steer_to_target(x, target, max_T=max_T, path=True)
            return result.path, result.values
        if max_T is not None:
            raise ValueError("max_T is the horizon of target mode; give target= too")
        x, T, steps, solver = self._arguments(x, T, steps, solver)
        if T == 0.0:
            h = self._value(x)
            return x.unsqueeze(0).repeat(steps + 1, 1, 1), h.expand(steps + 1, -1).clone()
        path, values = self.flow(x.float(), T, steps, solver, values=True)
        return path.to(x.dtype), values

    @property
    def device(self):
        self._require_fit()
        return self.barrier_.device

    def to(self, device):
        self.barrier_.to(device)
        return self

    def state_spec(self, d):
        tensors, scalars, dims = self._make_barrier().state_spec(d)
        own_tensors, own_scalars, _ = super().state_spec(d)
        return (
            {**own_tensors, **{f"barrier.{k}": v for k, v in tensors.items()}},
            {**own_scalars, **{f"barrier.{k}": v for k, v in scalars.items()}},
            dims,
        )

    def fitted_state(self):
        self._require_fit()
        tensors, scalars = self.barrier_.fitted_state()
        base = {"d_": self.d_, "median_norm_": self.median_norm_, "speed_": self.speed_}
        return (
            {f"barrier.{k}": v for k, v in tensors.items()},
            {**{f"barrier.{k}": v for k, v in scalars.items()}, **base},
        )

    def load_fitted_state(self, tensors, scalars):
        self.barrier_ = self._make_barrier()
        strip = {k.removeprefix("barrier."): v for k, v in tensors.items()}
        own = {k: v for k, v in scalars.items() if not k.startswith("barrier.")}
        inner = {k.removeprefix("barrier."): v for k, v in scalars.items() if k not in own}
        self.barrier_.load_fitted_state(strip, inner)
        super().load_fitted_state({}, own)


class ITI(BarrierSteerer):
    """ITI-style probe: unit weight vector of a linear logistic regression, one step."""

    name = "iti"

    def __init__(self, *, C: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.C = float(C)

    def _make_barrier(self):
        return Barrier(Identity(), center=True, normalize=False, C=self.C, seed=self.seed)

    def _space(self):
        return SearchSpace(
            features=("linear",), centers=(True,), Cs=(self.C,), normalizes=(False,), searched=()
        )

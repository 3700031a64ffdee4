"""Methods that move along the normalised gradient of a fitted barrier ``h = log p+/p-``.

ITI (one step along a linear probe), StepODESteer (one Euler step of the ODESteer field), ODESteer
(the field integrated over ``[0, T]``) and ODESteerPaper (ODESteer with the paper's settings).
See ``docs/method.md`` for the maths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import torch

from odesteer_core.method.barrier import Barrier
from odesteer_core.method.base import Steerer, unit_rows
from odesteer_core.method.checks import check_steps
from odesteer_core.method.features import FEATURE_MAPS, Identity, RandomFourier, TensorSketch
from odesteer_core.method.flows import quadratic_euler_flow
from odesteer_core.method.ode import check_solver, integrate, integrate_with_values

__all__ = ["ITI", "BarrierOptions", "ODESteer", "ODESteerPaper", "StepODESteer"]


class _BarrierSteerer(Steerer):
    """Moves along the normalised barrier gradient ``v = grad h / |grad h|``."""

    has_barrier = True

    def _make_barrier(self) -> Barrier:
        raise NotImplementedError

    def _fit(self, pos, neg):
        self.barrier_ = self._make_barrier().fit(pos, neg)

    def _velocity_and_value(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, grad = self.barrier_.value_and_grad(x)
        return unit_rows(grad), h

    def _value(self, x: torch.Tensor) -> torch.Tensor:
        return self.barrier_.value_and_grad(x.float(), need_grad=False)[0]

    def velocity(self, x):
        return self._velocity_and_value(x)[0]

    def barrier(self, x):
        return self._value(self._prepare(x))

    def flow(self, x, T, steps, solver, *, values=False):
        quadratic = self.barrier_.quadratic() if solver == "euler" else None
        if quadratic is not None:  # the default: one matrix product per step (flows.py)
            return quadratic_euler_flow(quadratic, x, T, steps, values=values)
        if not values:
            return integrate(self.velocity, x, T, steps=steps, solver=solver), None
        return integrate_with_values(
            self._velocity_and_value, x, T, steps=steps, solver=solver, value=self._value
        )

    def trajectory_with_barrier(
        self, x: torch.Tensor, T: float, *, steps: int | None = None, solver: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``trajectory(x, T)`` and the barrier at each of its points: (K + 1, B) float32.

        Cheaper than ``barrier`` on the path: each step's field evaluation computes ``h`` at the
        step's start anyway, so only the end point costs one more evaluation. Values are taken
        at the float32 points of the integration.
        """
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


class ITI(_BarrierSteerer):
    """ITI-style probe: unit weight vector of a linear logistic regression, one step."""

    name = "iti"

    def __init__(self, *, C: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.C = float(C)

    def _make_barrier(self):
        return Barrier(Identity(), center=True, normalize=False, C=self.C, seed=self.seed)


@dataclass(frozen=True)
class BarrierOptions:
    """Hyper-parameters of a barrier: the feature map and the logistic fit (``barrier.py``)."""

    features: str = "tensor_sketch"  # tensor_sketch, random_fourier or identity
    n_components: int = 8000  # sketch / random-feature dimension
    degree: int = 2  # polynomial degree of the sketch
    gamma: float | None = None  # kernel scale; None: the method's default (see StepODESteer)
    coef0: float = 1.0  # constant of the polynomial kernel
    center: bool | None = None  # subtract the pooled training mean; None: the method's default
    normalize: bool = True  # features of a / |a| (the paper's), else of a
    C: float = 1.0  # inverse L2 regularisation of the logistic regression
    max_iter: int = 1000  # L-BFGS iterations


class StepODESteer(_BarrierSteerer):
    """One Euler step along the ODESteer field (the paper's "StepODESteer").

    Defaults differ from the paper's in two measured ways (``benchmarks/synthetic_quality.py``):
    activations are centred on the pooled training mean before normalisation, and the sketch's
    ``gamma`` is 1.0 rather than 0.1, because with ``gamma=0.1`` and ``C=1`` the quadratic part of
    the kernel is 20x weaker than the linear part and the barrier underfits (docs/method.md
    section 9). ``odesteer_paper`` keeps the paper's exact setting. ``gamma=None`` means the class default
    for the sketch and scikit-learn's "scale" for random Fourier features.

    Keyword options are the fields of ``BarrierOptions`` (e.g. ``degree=3``, ``C=0.5``) and
    ``seed``; an unknown option is a ``TypeError``.
    """

    name = "step_odesteer"
    _center_default: ClassVar[bool] = True
    _gamma_default: ClassVar[float] = 1.0

    def __init__(self, *, seed: int = 0, **options) -> None:
        super().__init__(seed=seed)
        opts = BarrierOptions(**options)  # a TypeError names an unknown option
        if opts.features not in FEATURE_MAPS:
            raise ValueError(f"unknown features {opts.features!r}; valid: {sorted(FEATURE_MAPS)}")
        if opts.gamma is None and opts.features == "tensor_sketch":
            opts = replace(opts, gamma=self._gamma_default)
        if opts.center is None:
            opts = replace(opts, center=self._center_default)
        self.options = replace(opts, C=float(opts.C), max_iter=int(opts.max_iter))
        for name, value in asdict(self.options).items():
            setattr(self, name, value)  # s.degree, s.gamma, ...: hyper-parameters as attributes
        self._make_barrier()  # validate the feature options now, not at fit time

    def get_params(self) -> dict:
        return {**asdict(self.options), "seed": self.seed}

    def _make_barrier(self):
        if self.features == "tensor_sketch":
            fmap = TensorSketch(self.degree, self.n_components, self.gamma, self.coef0)
        elif self.features == "random_fourier":
            fmap = RandomFourier(self.n_components, self.gamma)
        else:
            fmap = Identity()
        return Barrier(
            fmap,
            center=self.center,
            normalize=self.normalize,
            C=self.C,
            max_iter=self.max_iter,
            seed=self.seed,
        )


class ODESteer(StepODESteer):
    """ODESteer: integrate ``da/dt = grad h / |grad h|`` over ``[0, T]`` (default 10 Euler steps)."""

    name = "odesteer"
    is_ode = True

    def __init__(self, *, steps: int = 10, solver: str = "euler", **barrier_options) -> None:
        super().__init__(**barrier_options)
        self.steps, self.solver = check_steps(steps), check_solver(solver)

    def get_params(self):
        return {**super().get_params(), "steps": self.steps, "solver": self.solver}

    def _resolve(self, steps, solver):
        steps = self.steps if steps is None else check_steps(steps)
        return steps, self.solver if solver is None else check_solver(solver)


class ODESteerPaper(ODESteer):
    """ODESteer exactly as the paper runs it: no centring, ``gamma=0.1``, 10 Euler steps."""

    name = "odesteer_paper"
    _center_default = False
    _gamma_default = 0.1

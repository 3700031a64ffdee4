"""ODESteer: the barrier's normalised gradient, one Euler step (StepODESteer) or integrated.

``BarrierOptions`` are the barrier's hyper-parameters; left unset, cross-validation chooses them
(``selection.py``; docs/method.md section 10). ``ODESteerPaper`` keeps the paper's fixed setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from odesteer_core.method.barrier import make_barrier
from odesteer_core.method.barrier_steerers import BarrierSteerer
from odesteer_core.method.checks import check_steps
from odesteer_core.method.features import FEATURE_MAPS
from odesteer_core.method.ode import check_solver
from odesteer_core.method.selection import C_GRID, DEGREES, GAMMAS, SearchSpace

__all__ = ["BarrierOptions", "ODESteer", "ODESteerPaper", "StepODESteer"]


@dataclass(frozen=True)
class BarrierOptions:
    """Hyper-parameters of a barrier: the feature map and the logistic fit (``barrier.py``).

    ``None`` means "not given": the setting is chosen by cross-validation when the steerer
    selects (``select=True``, the default of ``odesteer`` and ``step_odesteer``) and takes its
    fixed default otherwise (``FIXED`` and the class's ``center``/``gamma`` defaults).
    """

    features: str | None = None  # tensor_sketch, random_fourier or linear
    n_components: int | None = None  # sketch / random-feature dimension (8000)
    degree: int | None = None  # polynomial degree of the sketch (2)
    gamma: float | None = None  # kernel scale (class default; "scale" for random_fourier)
    coef0: float | None = None  # constant of the polynomial kernel (1)
    center: bool | None = None  # subtract the pooled training mean (class default)
    normalize: bool | None = None  # features of a / |a| (the paper's), else of a (True)
    C: float | None = None  # inverse L2 regularisation of the logistic regression (1)
    max_iter: int | None = None  # L-BFGS iterations (1000)


FIXED = {
    "features": "tensor_sketch",
    "n_components": 8000,
    "degree": 2,
    "coef0": 1.0,
    "normalize": True,
    "C": 1.0,
    "max_iter": 1000,
}
SEARCHABLE = (
    "features",
    "degree",
    "gamma",
    "center",
    "normalize",
    "C",
)  # the order of ``select`` strings


class StepODESteer(BarrierSteerer):
    """One Euler step along the ODESteer field (the paper's "StepODESteer").

    The barrier chooses itself (``select=True``, the default): the settings left unset among
    ``features``, ``degree``, ``gamma``, ``center``, ``normalize`` and ``C`` are picked by k-fold
    cross-validation on the training activations (``selection.py``; docs/method.md section 10),
    and ``report_`` says how well the chosen barrier does on held-out folds. ``select=False``
    uses fixed defaults instead; these differ from the paper's in two measured ways
    (``benchmarks/synthetic_quality.py``): activations are centred on the pooled training mean,
    and the sketch's ``gamma`` is 1.0 rather than 0.1 (docs/method.md section 9).
    ``odesteer_paper`` keeps the paper's exact setting.

    Keyword options are the fields of ``BarrierOptions`` (e.g. ``degree=3``, ``C=0.5``: given
    settings are kept, never searched), ``select`` and ``seed``; an unknown option is a
    ``TypeError``. ``get_params()`` reports every setting's fixed value and, in ``select``, the
    comma-separated names of the searched ones (a string ``select`` names them exactly, which is
    how a saved steerer is rebuilt).
    """

    name = "step_odesteer"
    _center_default: ClassVar[bool] = True
    _gamma_default: ClassVar[float] = 1.0
    _select_default: ClassVar[bool] = True

    def __init__(self, *, seed: int = 0, select: bool | str | None = None, **options) -> None:
        super().__init__(seed=seed)
        given = BarrierOptions(**options)  # a TypeError names an unknown option
        if given.features is not None and given.features not in FEATURE_MAPS:
            raise ValueError(f"unknown features {given.features!r}; valid: {sorted(FEATURE_MAPS)}")
        self.searched = self._searched(given, self._select_default if select is None else select)
        opts = {k: (FIXED.get(k) if v is None else v) for k, v in asdict(given).items()}
        if opts["center"] is None:
            opts["center"] = self._center_default
        if opts["gamma"] is None and opts["features"] == "tensor_sketch":
            opts["gamma"] = self._gamma_default
        for name in self.searched:
            opts[name] = {**FIXED, "center": self._center_default}.get(name, opts[name])
        if "gamma" in self.searched:
            opts["gamma"] = self._gamma_default
        opts["C"], opts["max_iter"] = float(opts["C"]), int(opts["max_iter"])
        self.options = BarrierOptions(**opts)
        for name, value in opts.items():
            setattr(self, name, value)  # s.degree, s.gamma, ...: the fixed values as attributes
        self.select = ",".join(self.searched)
        self._make_barrier()  # validate the feature options now, not at fit time

    @staticmethod
    def _searched(given: BarrierOptions, select: object) -> tuple[str, ...]:
        if isinstance(select, str):
            names = [s for s in select.split(",") if s]
            unknown = sorted(set(names) - set(SEARCHABLE))
            if unknown:
                raise ValueError(f"select names unknown settings {unknown}; valid: {SEARCHABLE}")
            return tuple(s for s in SEARCHABLE if s in names)
        if not isinstance(select, bool):
            raise TypeError(f"select must be a bool (or a saved steerer's string), got {select!r}")
        if not select:
            return ()
        sketch_given = any(v is not None for v in (given.degree, given.gamma, given.coef0))
        searched = {"features"} if given.features is None and not sketch_given else set()
        if "features" in searched or given.features in (None, "tensor_sketch"):
            searched |= {k for k in ("degree", "gamma") if getattr(given, k) is None}
        searched |= {k for k in ("center", "normalize", "C") if getattr(given, k) is None}
        return tuple(s for s in SEARCHABLE if s in searched)

    def get_params(self) -> dict:
        return {**asdict(self.options), "select": self.select, "seed": self.seed}

    def _space(self) -> SearchSpace:
        o, searched = self.options, self.searched
        return SearchSpace(
            features=SearchSpace.features if "features" in searched else (o.features,),
            degrees=DEGREES if "degree" in searched else (o.degree,),
            gammas=GAMMAS if "gamma" in searched else (o.gamma,),
            centers=(True, False) if "center" in searched else (o.center,),
            Cs=C_GRID if "C" in searched else (o.C,),
            normalizes=(True, False) if "normalize" in searched else (o.normalize,),
            coef0=o.coef0,
            n_components=o.n_components,
            searched=searched,
        )

    def _make_barrier(self):
        o = {**asdict(self.options), **(getattr(self, "chosen_", None) or {})}
        return make_barrier(o, self.options.coef0, self.seed, self.options.max_iter)


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
    _select_default = False

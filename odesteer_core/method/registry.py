"""Steering methods: every one is a velocity field ``v(a)``, moved along for time ``T``.

The contract (``fit``, ``steer``, ``trajectory``, ``barrier``, persistence) is the base class in
``base.py``; the methods are in ``directions.py``, ``mimic.py``, ``barrier_steerers.py`` (ITI) and
``odesteer.py``, and this module is their registry. One-step methods take one Euler step ``a + T v(a)`` (docs/method.md section 6);
ODE methods integrate ``da/dt = v(a)`` with a fixed-step solver (``ode.py``). All share one
contract:

    s = make_steerer("odesteer", seed=0).fit(pos, neg)   # (N, d), (M, d)
    s.steer(x, T)          # (B, d) -> (B, d), input dtype and device
    s.trajectory(x, T)     # (K + 1, B, d): K = steps for ODE methods, 1 for one-step methods
    s.barrier(x)           # (B,) log p+/p- estimate, float32 (methods with a barrier)

Work is done in float32 whatever the input dtype; each row is steered independently.
Units of ``T``: unit-speed fields (``odesteer``, ``step_odesteer``, ``iti``, ``repe``) move an
activation by exactly ``T`` (path length); ``caa`` by ``T |mu+ - mu-|``; ``linear_act`` transports
fully at ``T = 1``. ``strength.relative_to_T`` turns one model-independent strength into each
method's ``T``.
"""

from __future__ import annotations

from odesteer_core.method.barrier_steerers import ITI
from odesteer_core.method.base import Steerer
from odesteer_core.method.directions import CAA, LinearAcT, RepE
from odesteer_core.method.mimic import MiMiC
from odesteer_core.method.odesteer import ODESteer, ODESteerPaper, StepODESteer

__all__ = ["STEERERS", "make_steerer"]


STEERERS: dict[str, type[Steerer]] = {
    cls.name: cls
    for cls in (CAA, ITI, RepE, LinearAcT, MiMiC, StepODESteer, ODESteer, ODESteerPaper)
}


def make_steerer(method: str, **options) -> Steerer:
    """Build an unfitted steerer by registry name; options are the class's keyword arguments."""
    if method not in STEERERS:
        raise ValueError(f"unknown steering method {method!r}; valid methods: {sorted(STEERERS)}")
    cls = STEERERS[method]
    try:
        return cls(**options)
    except TypeError as err:
        raise TypeError(f"{method}: {err}; see help(oc.STEERERS[{method!r}])") from None

"""Steering to a confidence: follow the ODESteer flow only until the barrier reaches a level.

``steer(x, target=p)`` moves each row along ``v = grad h / |grad h|`` until ``h = logit(p)``
(docs/method.md section 11). Along the flow ``dh/dt = grad h . v = |grad h|``, so the level is
reached by the rows that can reach it, and each row stops there on its own:

- rows already at or above the level are not moved (returned bit for bit);
- the others take Euler steps of length ``dt`` (per row); when ``h`` at the end of a step is at
  or above the level, the crossing inside that straight step is located by a safeguarded secant
  search on ``t`` (started by the Newton step ``t = (level - h) / |grad h|``, exact to first
  order because the directional derivative along ``v`` is ``|grad h|``), and the row lands on
  ``h in [level, level + tol]`` and is frozen;
- a row that has not reached the level within its horizon ``max_T`` (path length; the field is
  unit speed) stops there and is reported as not reached, and so is a row where the field
  vanishes.

Everything is float32 on the steerer's device; the steerer chooses ``dt`` and ``max_T``
(``barrier_steerers.BarrierSteerer``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["TargetResult", "check_target", "target_flow", "target_level"]

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # x -> (h, grad h)
Value = Callable[[torch.Tensor], torch.Tensor]  # x -> h


@dataclass
class TargetResult:
    """What ``steer_to_target`` returns, per row of the batch.

    Attributes:
        x: (B, d) steered activations, input dtype and device; unmoved rows are the input's.
        reached: (B,) bool: ``h >= level`` at the end (true for rows that started there).
        time: (B,) float32 flow time used, equal to the path length (unit-speed field).
        distance: (B,) float32 ``|x_out - x_in|`` (at most ``time``).
        h: (B,) float32 barrier at the end point.
        steps: (B,) int64 Euler steps taken (0 for rows not moved).
        level: the barrier level, ``logit(p)``.
        path: (K + 1, B, d) when asked for: each row's points, padded by repeating its last one.
        values: (K + 1, B) float32 ``h`` at the points of ``path``, padded the same way.
    """

    x: torch.Tensor
    reached: torch.Tensor
    time: torch.Tensor
    distance: torch.Tensor
    h: torch.Tensor
    steps: torch.Tensor
    level: float
    path: torch.Tensor | None = None
    values: torch.Tensor | None = None


def check_target(target: object) -> float:
    """A confidence in (0, 1): a real number, or a one-element tensor; its logit is the level."""
    if isinstance(target, torch.Tensor):
        if target.numel() != 1:
            raise TypeError(f"target must be a number, got a tensor of shape {tuple(target.shape)}")
        target = target.item()
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise TypeError(f"target must be a probability in (0, 1), got {type(target).__name__}")
    if not (math.isfinite(target) and 0.0 < target < 1.0):
        raise ValueError(f"target must be a probability strictly between 0 and 1, got {target}")
    return float(target)


def target_level(target: float) -> float:
    """The barrier level of a confidence: ``logit(target) = log(p / (1 - p))``."""
    return math.log(target) - math.log1p(-target)


@dataclass(frozen=True)
class TargetSettings:
    level: float  # the barrier value to reach, logit(p)
    tol: float = 1e-3  # land on h in [level, level + tol]
    max_refine: int = 30  # secant iterations to locate a crossing
    keep_path: bool = False


def _locate(value: Value, x, v, t_hi, h_lo, h_hi, speed, s: TargetSettings):
    """Crossing of ``h(x + t v) = level`` in ``[0, t_hi]`` (``h(0) < level <= h(t_hi)``)."""
    lo, hi = torch.zeros_like(t_hi), t_hi.clone()
    t = torch.minimum((s.level - h_lo) / speed, t_hi)  # Newton from 0: dh/dt = |grad h|
    t_end, h_end = hi.clone(), h_hi.clone()
    todo = torch.ones_like(t_hi, dtype=torch.bool)
    for i in range(s.max_refine):
        ht = value(x + t[:, None] * v)
        ok = todo & (ht >= s.level) & (ht <= s.level + s.tol)
        t_end, h_end = torch.where(ok, t, t_end), torch.where(ok, ht, h_end)
        todo &= ~ok
        if not bool(todo.any()):
            break
        below = ht < s.level
        lo, h_lo = torch.where(below, t, lo), torch.where(below, ht, h_lo)
        hi, h_hi = torch.where(below, hi, t), torch.where(below, h_hi, ht)
        t_end, h_end = torch.where(todo & ~below, t, t_end), torch.where(todo & ~below, ht, h_end)
        secant = lo + (s.level - h_lo) * (hi - lo) / (h_hi - h_lo).clamp_min(1e-30)
        t = secant if i % 3 < 2 else 0.5 * (lo + hi)  # a bisection now and then: guaranteed
        t = torch.where((t > lo) & (t < hi), t, 0.5 * (lo + hi))
    return t_end, h_end  # rows not within tol after max_refine: the upper end, h >= level


def target_flow(
    field: Field,
    value: Value,
    x: torch.Tensor,
    dt: torch.Tensor,
    max_T: torch.Tensor,
    settings: TargetSettings,
) -> TargetResult:
    """Euler steps of ``v = grad h / |grad h|`` from float32 ``x`` (B, d), each row until ``h``
    reaches ``settings.level`` (event located inside the step) or its horizon ``max_T`` (B,).
    ``dt`` (B,) is each row's step length. Returns float32 tensors (``x`` of the result too)."""
    level = settings.level
    cur = x.clone()
    h = value(x)
    reached = h >= level
    active = ~reached
    time = torch.zeros_like(h)
    steps = torch.zeros(len(x), dtype=torch.long, device=x.device)
    path, values = ([x.clone()], [h.clone()]) if settings.keep_path else (None, None)
    while bool(active.any()):
        idx = torch.nonzero(active).flatten()
        xa = cur[idx]
        ha, grad = field(xa)
        speed = grad.norm(dim=1)
        moving = speed > 1e-30
        v = grad / speed.clamp_min(1e-30)[:, None]
        step = torch.minimum(dt[idx], max_T[idx] - time[idx]).clamp_min(0)
        x1 = xa + step[:, None] * v
        h1 = value(x1)
        crossed = moving & (h1 >= level)
        if bool(crossed.any()):
            c = torch.nonzero(crossed).flatten()
            t_c, h_c = _locate(value, xa[c], v[c], step[c], ha[c], h1[c], speed[c], settings)
            x1[c] = xa[c] + t_c[:, None] * v[c]
            h1[c] = h_c
            step[c] = t_c
        step = torch.where(moving, step, 0.0)
        x1 = torch.where(moving[:, None], x1, xa)
        h1 = torch.where(moving, h1, ha)
        cur[idx], h[idx] = x1, h1
        time[idx] += step
        steps[idx] += moving.long()
        reached[idx] = crossed
        out_of_time = time[idx] >= max_T[idx] * (1 - 1e-6)
        active[idx] = ~crossed & moving & ~out_of_time
        if path is not None:
            path.append(cur.clone())
            values.append(h.clone())
    result = TargetResult(
        x=cur,
        reached=reached,
        time=time,
        distance=(cur - x).norm(dim=1),
        h=h,
        steps=steps,
        level=level,
    )
    if path is not None:
        result.path, result.values = torch.stack(path), torch.stack(values)
    return result

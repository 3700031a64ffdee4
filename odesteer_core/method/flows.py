"""The lean ODESteer flow: Euler steps of ``v = grad h / |grad h|`` for a quadratic barrier.

With the degree-2 sketch (``features.TensorSketch``, the default), the barrier of a centred and
unit-normalised activation is exactly a quadratic form of ``z = y / |y|``, ``y = a - mu``::

    h = z.K z / 2 + k.z + c                      (K symmetric, d x d)

so the whole field needs one matrix product per step. Working on ``y`` instead of ``z`` removes
the per-step normalisation: with ``r = |y|``, ``P = y [K | k]`` gives ``K y`` and ``k.y`` in one
product, and ``u = K y + r k - y (y.K y + r k.y) / r^2`` is ``r (I - z z^T)(K z + k)``, a positive
multiple of ``grad h`` (docs/method.md section 3), so ``v = u / |u|``. As ``u`` is orthogonal to
``y``, an Euler step of length ``dt`` gives ``|y'|^2 = |y|^2 + dt^2``: the radii of the whole
path are known before the first step. ``h`` itself, when asked
for, is ``y.K y / (2 r^2) + k.y / r + c``: three more row reductions of what the step already
computed. Nothing here validates, converts dtypes or synchronises with the host: callers check
their arguments once (``base.Steerer``), and the same arithmetic runs on CPU and GPU.
"""

from __future__ import annotations

import torch

__all__ = ["QuadraticBarrier", "quadratic_euler_flow"]


class QuadraticBarrier:
    """``h`` as a quadratic form in ``y = a - mean``: what the lean flow needs, built once.

    Attributes:
        mean: (d,) the centring ``mu``.
        M: (d + 1, d + 1) ``[[K, k], [k^T, 0]]``, contiguous: ``[y, r] M = [K y + r k, k.y]``.
        c: The constant, with the logistic intercept and the log prior ratio folded in.
    """

    def __init__(self, mean: torch.Tensor, K: torch.Tensor, k: torch.Tensor, c: float) -> None:
        d = K.shape[0]
        self.mean = mean
        self.M = K.new_zeros(d + 1, d + 1)
        self.M[:d, :d], self.M[:d, d], self.M[d, :d] = K, k, k
        self.c = float(c)

    @property
    def d(self) -> int:
        return self.M.shape[0] - 1


def quadratic_euler_flow(
    q: QuadraticBarrier, x: torch.Tensor, T: float, steps: int, *, values: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``steps`` Euler steps of the normalised gradient flow of ``q`` from ``x`` over ``[0, T]``.

    Args:
        q: The barrier's quadratic form.
        x: (B, d) float32 activations on ``q``'s device (not checked).
        T: Horizon; ``dt = T / steps``.
        steps: Number of Euler steps (>= 1, not checked).
        values: Also return ``h`` at every point of the path.

    Returns:
        The path (steps + 1, B, d) (index 0 is ``x`` itself) and, with ``values``, ``h`` at its
        points (steps + 1, B); else None.
    """
    d, dt = q.d, T / steps
    B = x.shape[0]
    path = x.new_empty(steps + 1, B, d)
    h = x.new_empty(steps + 1, B, 1) if values else None
    state = x.new_empty(B, d + 1)  # [y | r]: one matrix product gives K y + r k, k.y
    y, r = state[:, :d], state[:, d:]
    torch.sub(x, q.mean, out=y)
    path[0] = y
    # Each step moves y by dt along u, and u is orthogonal to y, so |y|^2 grows by exactly dt^2
    # per step: every radius is known up front, and no step needs a norm of y.
    r0 = torch.linalg.vector_norm(y, dim=1, keepdim=True)
    r2s = r0.square() + (dt * dt) * torch.arange(steps + 1, dtype=x.dtype, device=x.device)
    r2s.clamp_min_(1e-24)  # (B, steps + 1); a row at the mean moves along k
    rs = r2s.sqrt()
    for i in range(steps + 1):
        r.copy_(rs[:, i : i + 1])
        P = torch.mm(state, q.M)  # (B, d + 1)
        g, ky = P[:, :d], P[:, d:]  # K y + r k = |y| grad of h's form; k.y
        coef = torch.linalg.vecdot(y, g).unsqueeze(1).div_(r2s[:, i : i + 1])  # z.(K z + k)
        if h is not None:
            torch.addcdiv(coef, ky, r, out=h[i])  # 2 (h - c) = z.K z + 2 k.z, scaled below
        if i == steps:
            break
        u = g.addcmul_(y, coef, value=-1.0)  # |y| (I - z z^T)(K z + k): along grad h
        y.addcdiv_(u, torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min_(1e-30), value=dt)
        path[i + 1] = y
    path += q.mean
    if h is not None:
        h = h.squeeze(2).mul_(0.5).add_(q.c)
    return path, h

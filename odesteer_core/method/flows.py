"""The lean ODESteer flow: Euler steps of ``v = grad h / |grad h|`` for a quadratic barrier.

With the degree-2 sketch (``features.TensorSketch``, the default), the barrier of a centred and
unit-normalised activation is exactly a quadratic form of ``z = y / |y|``, ``y = a - mu``::

    h = z.K z / 2 + k.z + c                      (K symmetric, d x d)

so the whole field needs one matrix product per step. Working on ``y`` instead of ``z`` removes
the per-step normalisation: with ``r = |y|``, ``P = y [K | k]`` gives ``K y`` and ``k.y`` in one
product, and ``u = K y + r k - y (y.K y + r k.y) / r^2`` is ``r (I - z z^T)(K z + k)``, a positive
multiple of ``grad h`` (docs/method.md section 3), so ``v = u / |u|``. ``h`` itself, when asked
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
        M: (d, d + 1) ``[K | k]``, contiguous, float32.
        k: (d,) the linear term (a view of ``M``'s last column's data, contiguous copy).
        c: The constant, with the logistic intercept and the log prior ratio folded in.
    """

    def __init__(self, mean: torch.Tensor, K: torch.Tensor, k: torch.Tensor, c: float) -> None:
        self.mean = mean
        self.M = torch.cat([K, k[:, None]], dim=1).contiguous()
        self.k = k.contiguous()
        self.c = float(c)

    @property
    def d(self) -> int:
        return self.M.shape[0]


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
    path = x.new_empty(steps + 1, *x.shape)
    path[0] = x
    h = x.new_empty(steps + 1, x.shape[0]) if values else None
    y = x - q.mean  # (B, d)
    for i in range(steps + 1):
        P = torch.mm(y, q.M)  # (B, d + 1): K y | k.y
        Ky, ky = P[:, :d], P[:, d]
        r2 = (y * y).sum(1).clamp_min_(1e-24)  # (B,); a row at the mean moves along k
        r = r2.sqrt()
        yKy = (y * Ky).sum(1)
        if h is not None:
            h[i] = (0.5 * yKy + r * ky) / r2 + q.c
        if i == steps:
            break
        coef = torch.addcmul(yKy, r, ky).div_(r2)  # y.(K y + r k) / r^2
        u = torch.addcmul(Ky, r[:, None], q.k).sub_(y * coef[:, None])  # r (I - z z^T) grad
        y = y + u * (dt / torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min_(1e-30))
        torch.add(y, q.mean, out=path[i + 1])
    return path, h

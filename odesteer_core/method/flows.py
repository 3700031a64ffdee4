"""The lean ODESteer flow: Euler steps of ``v = grad h / |grad h|`` for a quadratic barrier.

With the degree-2 sketch (``features.TensorSketch``, the default), the barrier of a centred and
unit-normalised activation is exactly a quadratic form of ``z = y / |y|``, ``y = a - mu``::

    h = z.K z / 2 + k.z + c                      (K symmetric, d x d)

so the whole field needs one matrix product per step. Working on ``y`` instead of ``z`` removes
the per-step normalisation: with ``r = |y|``, ``P = [y, r] M`` gives ``K y + r k`` and ``k.y``
in one product (each point of the path is stored as the row ``[y, r]``, its radius written up
front), and
``u = K y + r k - y (y.K y + r k.y) / r^2`` is ``r (I - z z^T)(K z + k)``, a positive multiple
of ``grad h`` (docs/method.md section 3), so ``v = u / |u|``. As ``u`` is orthogonal to ``y``, an
Euler step of length ``dt`` gives ``|y'|^2 = |y|^2 + dt^2``: the radii of the whole path are
known before the first step. ``h`` itself, when asked for, is ``y.K y / (2 r^2) + k.y / r + c``:
three more row reductions of what the step already computed. On CPU the product goes through
MKL or oneDNN, whichever is faster for the batch and width (``ONEDNN_MIN_D``). Nothing here
validates, converts dtypes or synchronises with the host: callers check
their arguments once (``base.Steerer``), and the same arithmetic runs on CPU and GPU.

A linear map (``features.Identity``: ``h = k.z + c``, ``K = 0``) needs no matrix at all:
normalised, ``u = k - y (k.y) / |y|^2`` (row reductions only); not normalised, the gradient
``k / s`` is constant and the Euler path is a straight line (``linear_euler_flow``).
"""

from __future__ import annotations

import torch

from odesteer_core.method.kernels import linear, onednn_available

__all__ = ["LinearBarrier", "QuadraticBarrier", "linear_euler_flow", "quadratic_euler_flow"]

# Which kernel computes a step's (B x (d + 1)) @ ((d + 1) x (d + 1)) product on CPU: MKL's
# (``torch.mm``), or oneDNN's (``kernels.linear``) from these widths on. MKL loops matrix-vector
# products below 4 rows, reading M once per row; oneDNN reads it about once, but costs more for
# one row of a small matrix. Whole 10-step flows on the project's 2-core build machine (ms, MKL /
# oneDNN): batch 3: d = 256 0.65 / 1.18, 512 0.96 / 1.06, 768 1.75 / 1.43, 1024 3.51 / 3.11,
# 2048 17.1 / 8.9; batch 1: d = 768 0.77 / 1.02, 1024 1.61 / 1.79, 2048 5.29 / 4.21.
ONEDNN_MIN_D = 640  # two rows or more
ONEDNN_MIN_D_ONE_ROW = 1536


class QuadraticBarrier:
    """``h`` as a quadratic form in ``y = a - mean``: what the lean flow needs, built once.

    Attributes:
        mean: (d,) the centring ``mu``.
        M: (d + 1, d + 1) ``[[K, k], [k^T, 0]]``: ``[y, r] M = [K y + r k, k.y]``.
        c: The constant, with the logistic intercept and the log prior ratio folded in.
        onednn: Whether oneDNN may compute the step's product (``kernels.linear``; ``M`` is
            symmetric, so ``linear(rows, M) = rows M``): float32 on CPU and oneDNN's self-check
            passed. ``use_onednn`` decides per batch size.
    """

    def __init__(self, mean: torch.Tensor, K: torch.Tensor, k: torch.Tensor, c: float) -> None:
        d = K.shape[0]
        self.mean = mean
        self.M = K.new_zeros(d + 1, d + 1)
        self.M[:d, :d], self.M[:d, d], self.M[d, :d] = K, k, k
        self.c = float(c)
        self.onednn = K.device.type == "cpu" and K.dtype == torch.float32 and onednn_available()

    @property
    def d(self) -> int:
        return self.M.shape[0] - 1

    def use_onednn(self, rows: int) -> bool:
        """Whether a step's product for ``rows`` rows goes through oneDNN (the faster kernel here:
        see ``ONEDNN_MIN_D``)."""
        return self.onednn and self.d >= (ONEDNN_MIN_D if rows >= 2 else ONEDNN_MIN_D_ONE_ROW)


class LinearBarrier:
    """``h = k.z + c`` with ``z = y / |y|`` (``normalize``) or ``z = y / scale``, ``y = a - mean``."""

    def __init__(
        self, mean: torch.Tensor, k: torch.Tensor, c: float, normalize: bool, scale: float
    ) -> None:
        self.mean, self.k, self.c = mean, k, float(c)
        self.normalize, self.scale = bool(normalize), float(scale)


def linear_euler_flow(
    q: LinearBarrier, x: torch.Tensor, T: float, steps: int, *, values: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """As ``quadratic_euler_flow``, for a linear barrier (same arguments and returns)."""
    dt = T / steps
    if not q.normalize:  # constant field: a straight line, every point in one product
        ts = dt * torch.arange(steps + 1, dtype=x.dtype, device=x.device)[:, None, None]
        k_norm = torch.linalg.vector_norm(q.k)
        path = torch.addcmul(x, ts, q.k / k_norm.clamp_min(1e-30))  # (steps + 1, B, d)
        if not values:
            return path, None
        h = torch.mv(x - q.mean, q.k).div_(q.scale).add_(q.c)  # h at x, then + t |k| / scale
        return path, h + ts[:, :, 0] * (k_norm / q.scale)
    d, B = x.shape[1], x.shape[0]
    path = x.new_empty(steps + 1, B, d)
    ys = path.unbind(0)
    torch.sub(x, q.mean, out=ys[0])
    # u = k - y (k.y) / |y|^2 is (I - z z^T) k: along grad h. |y|^2 is measured at every step,
    # not predicted (|y|^2 + dt^2): near the top of h, u is a small difference and its rounding
    # would otherwise feed back into every later step (steps much longer than |y| amplified
    # input differences of 1e-6 to 3e-3).
    h = x.new_empty(steps + 1, B) if values else None
    for i in range(steps + 1):
        y = ys[i]
        ky = torch.mv(y, q.k)
        if h is not None:
            torch.div(ky, torch.linalg.vector_norm(y, dim=1), out=h[i])  # k.z
        if i == steps:
            break
        coef = ky.div_(torch.linalg.vecdot(y, y).clamp_min_(1e-24)).unsqueeze_(1)
        u = torch.addcmul(q.k, y, coef, value=-1.0)
        norm = torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min_(1e-30)
        torch.addcdiv(y, u, norm, value=dt, out=ys[i + 1])
    path += q.mean
    return path, None if h is None else h.add_(q.c)


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
    # Each point of the path is stored as the row [y, r] (r = |y|), so that one plain product
    # [y, r] M gives [K y + r k, k.y]: no bias term, no per-step concatenation.
    ext = x.new_empty(steps + 1, B, d + 1)
    Y = ext[:, :, :d]  # (steps + 1, B, d): the path, less the mean
    ys = Y.unbind(0)  # y at each step, written in place
    y0 = torch.sub(x, q.mean, out=ys[0])
    # Each step moves y by dt along u, and u is orthogonal to y, so |y|^2 grows by exactly dt^2
    # per step: every radius is known up front.
    ticks = torch.arange(steps + 1, dtype=x.dtype, device=x.device).unsqueeze_(1)
    r2s = torch.add(torch.linalg.vecdot(y0, y0), ticks, alpha=dt * dt)  # (steps + 1, B)
    r2s.clamp_min_(1e-24)  # a row at the mean moves along k
    torch.sqrt(r2s, out=ext[:, :, d])
    inv_r2 = r2s.reciprocal_().unsqueeze_(2).unbind(0)
    # Every view the loop needs is made here: on CPU a slice costs as much as a small product.
    rows = ext.unbind(0)  # [y, r] at each step, (B, d + 1)
    h = x.new_empty(steps + 1, B, 1) if values else None
    radius = ext[:, :, d:].unbind(0) if values else None
    onednn = q.use_onednn(B)
    P = x.new_empty(B, d + 1)
    g, ky = P[:, :d], P[:, d:]  # K y + r k (= |y| grad); k.y
    coef = x.new_empty(B, 1)
    dot = coef.view(B)
    for i in range(steps + 1 if values else steps):  # the end point needs h only
        if onednn:  # a fresh product each step, and its views
            P = linear(rows[i], q.M)
            g, ky = P[:, :d], P[:, d:]
        else:
            torch.mm(rows[i], q.M, out=P)  # [K y + r k, k.y]
        torch.linalg.vecdot(ys[i], g, out=dot)
        coef.mul_(inv_r2[i])  # z.(K z + k)
        if h is not None:
            torch.addcdiv(coef, ky, radius[i], out=h[i])  # 2 (h - c) = z.K z + 2 k.z
        if i == steps:
            break
        u = g.addcmul_(ys[i], coef, value=-1.0)  # |y| (I - z z^T)(K z + k): along grad h
        norm = torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min_(1e-30)
        torch.addcdiv(ys[i], u, norm, value=dt, out=ys[i + 1])
    path = torch.add(Y, q.mean)  # a fresh, contiguous (steps + 1, B, d)
    if h is not None:
        h = h.squeeze(2).mul_(0.5).add_(q.c)
    return path, h

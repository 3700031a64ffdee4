"""L2-regularised logistic regression, fitted full-batch with L-BFGS in torch.

Same objective as scikit-learn's ``LogisticRegression(C=C)`` with the lbfgs solver: mean log-loss
plus ``|w|^2 / (2 C n)``, intercept not penalised, stop when the largest gradient entry is below
``tol``. Fitting in torch keeps the feature matrix on the data's device (GPU when present) and in
float32, which is where the speed-up over the paper's CPU recipe comes from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["fit_logistic", "fit_logistic_batched"]


def fit_logistic(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    tol: float = 1e-4,
    init: tuple[torch.Tensor, float] | None = None,
) -> tuple[torch.Tensor, float, int]:
    """Fit ``P(y=1 | x) = sigmoid(x . w + b)``.

    Args:
        features: (n, D) float tensor.
        labels: (n,) tensor of 0/1.
        C: inverse regularisation strength, as in scikit-learn.
        max_iter: L-BFGS iterations at most.
        tol: stop when ``max |grad| <= tol``.
        init: ``(w, b)`` to start from (a warm start, e.g. along a regularisation path).

    Returns:
        ``(w, b, n_iter)`` with ``w`` (D,) float32 on the features' device.
    """
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    n, D = features.shape
    X = features.float()
    sign = labels.float().to(X.device) * 2 - 1  # (n,) in {-1, +1}
    params = torch.zeros(D + 1, device=X.device, dtype=torch.float32)  # [w, b]
    if init is not None:
        params[:D], params[D] = init[0].to(params), float(init[1])
    l2 = 1.0 / (C * n)

    def loss_and_grad(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = p[:D], p[D]
        margin = sign * (X @ w + b)  # (n,)
        loss = F.softplus(-margin).mean() + 0.5 * l2 * w.dot(w)
        r = -sign * torch.sigmoid(-margin) / n  # d loss / d logit, (n,)
        grad = torch.empty_like(p)
        grad[:D] = X.T @ r + l2 * w
        grad[D] = r.sum()
        return loss, grad

    optimizer = torch.optim.LBFGS(
        [params.requires_grad_()],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        # Hand-written gradient: cheaper than autograd and no graph kept alive.
        with torch.no_grad():
            loss, grad = loss_and_grad(params)
        params.grad = grad
        return loss

    optimizer.step(closure)
    n_iter = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
    params = params.detach()
    return params[:D].clone(), float(params[D]), n_iter


def fit_logistic_batched(
    features: torch.Tensor,
    labels: torch.Tensor,
    masks: torch.Tensor,
    l2: torch.Tensor,
    *,
    max_iter: int = 200,
    tol: float = 1e-3,
    prune: Callable[[torch.Tensor], torch.Tensor] | None = None,
    prune_every: int = 5,
) -> torch.Tensor:
    """Many L2 logistic regressions at once, one per (feature group, problem), by batched L-BFGS.

    Problem ``q`` of group ``g`` fits on the rows where ``masks[q]`` is 1 (e.g. one fold's
    training rows) with penalty ``l2[q] |w|^2 / 2`` on the mean log-loss. Each problem keeps its
    own L-BFGS history and its own backtracking (Armijo) step, so one call replaces
    ``groups * problems`` separate fits with two batched matrix products per evaluation: the
    cross-validation search (``selection.py``) is dominated by arithmetic, not Python overhead.

    Args:
        features: (G, n, D) float32.
        labels: (n,) 0/1.
        masks: (Q, n) 0/1 training-row masks.
        l2: (Q,) or (G, Q) penalty per problem (``1 / (C n_train)`` for scikit-learn's objective).
        max_iter: iterations at most; tol: stop a problem when ``max |grad|`` is below ``tol``
            times its value at the start (relative: feature scales differ across groups).
        prune: called with the current (G, Q, D + 1) parameters every ``prune_every``
            iterations; the groups it returns True for (a (G,) bool tensor) stop where they are
            (how a search drops hopeless candidates early).

    Returns:
        (G, Q, D + 1) parameters ``[w, b]``.
    """
    masks = masks.to(features.device)
    used = masks.any(0)  # rows no problem trains on change nothing: drop them once
    if not bool(used.all()):
        features, labels, masks = features[:, used], labels[used.to(labels.device)], masks[:, used]
    G, n, D = features.shape
    Q = masks.shape[0]
    sign = (labels.float() * 2 - 1).to(features.device)  # (n,)
    masks = masks.float()
    weight = masks / masks.sum(1, keepdim=True)  # (Q, n): mean over each problem's rows
    l2 = l2.float().to(features.device).expand(G, Q)[..., None]  # (G, Q, 1)

    compact: dict = {}  # the live groups' features, copied once each time the live set changes

    def loss_grad(p: torch.Tensor, groups: torch.Tensor | None = None):
        """Loss (G', Q) and gradient (G', Q, D + 1) of ``p`` (G', Q, D + 1) for the feature
        groups ``groups`` (all when None)."""
        if groups is None:
            X, lam = features, l2
        else:
            key = tuple(groups.tolist())
            if key not in compact:
                compact.clear()
                compact[key] = features[groups]
            X, lam = compact[key], l2[groups]
        w, b = p[..., :D], p[..., D]  # (G', Q, D), (G', Q)
        logits = torch.bmm(w, X.transpose(1, 2)) + b[..., None]  # (G', Q, n): contiguous
        margin = sign * logits
        loss = (F.softplus(-margin) * weight).sum(2) + 0.5 * (lam[..., 0] * (w * w).sum(2))
        r = -sign * torch.sigmoid(-margin) * weight  # (G', Q, n)
        grad = torch.empty_like(p)
        grad[..., :D] = torch.bmm(r, X) + lam * w  # r X: no transposed copy of X
        grad[..., D] = r.sum(2)
        return loss, grad

    x = torch.zeros(G, Q, D + 1, device=features.device)
    f, g = loss_grad(x)
    stop = tol * g.abs().amax(2).clamp_min(1e-12)  # (G, Q)
    stuck = torch.zeros_like(f, dtype=torch.bool)  # line search failed: at float32's limit
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for iteration in range(max_iter):
        if prune is not None and iteration and iteration % prune_every == 0:
            stuck |= prune(x)[:, None]
        active = (g.abs().amax(2) > stop) & ~stuck  # (G, Q)
        if not bool(active.any()):
            break
        q = g.clone()
        alphas = []
        for s, y, rho in reversed(history):
            a = rho * (s * q).sum(2, keepdim=True)
            q -= a * y
            alphas.append(a)
        if history:
            s, y, _ = history[-1]
            yy = (y * y).sum(2, keepdim=True)
            q *= torch.where(yy > 0, (s * y).sum(2, keepdim=True) / yy.clamp_min(1e-30), 1.0)
        else:
            q *= 1.0 / g.abs().sum(2, keepdim=True).clamp_min(1.0)  # first step, as torch
        for (s, y, rho), a in zip(history, reversed(alphas)):
            q += s * (a - rho * (y * q).sum(2, keepdim=True))
        d = -q * active[..., None]
        slope = (g * d).sum(2)
        bad = slope >= 0  # not a descent direction: fall back to steepest descent
        if bool((bad & active).any()):
            d = torch.where(bad[..., None], -g * active[..., None], d)
            slope = (g * d).sum(2)
        t = torch.ones_like(f)
        accepted = ~active
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        # Groups whose problems have all converged stay where they are: only the others are
        # evaluated (the same numbers, fewer products).
        live = torch.nonzero(active.any(1)).flatten()
        every = len(live) == G
        for _ in range(12):  # backtracking, per problem
            trial = x + t[..., None] * d
            if every:
                f_t, g_t = loss_grad(trial)
            else:
                f_t, g_t = f.clone(), g.clone()
                f_t[live], g_t[live] = loss_grad(trial[live], live)
            ok = (~accepted) & (f_t <= f + 1e-4 * t * slope)
            x_new = torch.where(ok[..., None], trial, x_new)
            f_new, g_new = torch.where(ok, f_t, f_new), torch.where(ok[..., None], g_t, g_new)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, 0.25 * t)
        stuck |= ~accepted
        s, y = x_new - x, g_new - g
        sy = (s * y).sum(2, keepdim=True)
        rho = torch.where(sy > 1e-10, 1.0 / sy.clamp_min(1e-10), 0.0)
        history.append((s * (rho > 0), y * (rho > 0), rho))
        if len(history) > 10:
            history.pop(0)
        if bool((f - f_new).abs().le(1e-9 * f.abs().clamp_min(1.0)).all()):
            x, f, g = x_new, f_new, g_new
            break
        x, f, g = x_new, f_new, g_new
    return x

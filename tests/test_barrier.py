"""Feature maps, barrier and solvers: closed-form gradients against autograd, exact flows."""

import math

import pytest
import torch

import odesteer_core as oc
from odesteer_core.method.features import RandomFourier, TensorSketch


def _fft_only(sketch: TensorSketch) -> TensorSketch:
    sketch.quadratic_max_d = sketch.quadratic_max_d_gpu = 0  # degree 2 by FFTs, as for wide models
    return sketch


FEATURE_MAPS = {
    "sketch_deg2": lambda: TensorSketch(degree=2, n_components=64, gamma=0.5),
    "sketch_deg2_fft": lambda: _fft_only(TensorSketch(degree=2, n_components=64, gamma=0.5)),
    "sketch_deg3": lambda: TensorSketch(degree=3, n_components=50, gamma=0.5),
    "sketch_deg1_no_coef0": lambda: TensorSketch(degree=1, n_components=40, coef0=0.0),
    "fourier": lambda: RandomFourier(n_components=48, gamma=0.3),
    "linear": oc.Identity,
}


def _blobs(d=6, n=80, seed=0, shift=1.5):
    g = torch.Generator().manual_seed(seed)
    offset = torch.zeros(d)
    offset[0] = shift
    pos = torch.randn(n, d, generator=g) + offset + 3.0
    neg = torch.randn(n, d, generator=g) - offset + 3.0
    return pos, neg


def _double(barrier: oc.Barrier) -> oc.Barrier:
    """The same fitted barrier with every tensor in float64 (for gradcheck)."""
    barrier.mean_, barrier.coef_ = barrier.mean_.double(), barrier.coef_.double()
    for name, value in barrier.feature_map.buffers().items():
        if value.is_floating_point():
            setattr(barrier.feature_map, name, value.double())
    return barrier


class _ClosedFormH(torch.autograd.Function):
    """h with its hand-written gradient as backward, so gradcheck tests exactly that gradient."""

    @staticmethod
    def forward(ctx, x, barrier):
        h, grad = barrier.value_and_grad(x)
        ctx.save_for_backward(grad)
        return h

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad_out[:, None] * grad, None


@pytest.mark.parametrize("fmap", sorted(FEATURE_MAPS))
@pytest.mark.parametrize("center,normalize", [(True, True), (False, True), (True, False)])
def test_barrier_gradient_gradcheck(fmap, center, normalize):
    pos, neg = _blobs()
    barrier = oc.Barrier(FEATURE_MAPS[fmap](), center=center, normalize=normalize).fit(pos, neg)
    barrier = _double(barrier)
    x = torch.cat([pos[:3], neg[:3]]).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: _ClosedFormH.apply(x, barrier), (x,), eps=1e-6)


@pytest.mark.parametrize("fmap", sorted(FEATURE_MAPS))
def test_barrier_gradient_matches_autograd(fmap):
    pos, neg = _blobs()
    barrier = _double(oc.Barrier(FEATURE_MAPS[fmap]()).fit(pos, neg))
    x = neg[:4].double().requires_grad_()
    h, grad = barrier.value_and_grad(x.detach())
    h_auto = barrier.value_and_grad(x, need_grad=False)[0]
    (auto,) = torch.autograd.grad(h_auto.sum(), x)
    torch.testing.assert_close(grad, auto, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(h, h_auto.detach())


@pytest.mark.parametrize("coef0", [1.0, 0.0])
def test_degree_2_quadratic_form_is_exactly_the_sketch(coef0):
    quadratic = TensorSketch(degree=2, n_components=101, gamma=0.3, coef0=coef0)
    quadratic.init(9, torch.Generator().manual_seed(2))
    fft = _fft_only(TensorSketch(degree=2, n_components=101, gamma=0.3, coef0=coef0))
    fft.index_hash, fft.sign_hash = quadratic.index_hash, quadratic.sign_hash.double()
    quadratic.sign_hash = fft.sign_hash
    g = torch.Generator().manual_seed(3)
    z, w = torch.randn(7, 9, generator=g).double(), torch.randn(101, generator=g).double()
    h, grad = quadratic.value_vjp(z, w)
    assert hasattr(quadratic, "_quadratic_cache") and not hasattr(fft, "_quadratic_cache")
    torch.testing.assert_close(h, quadratic(z) @ w, rtol=1e-12, atol=1e-12)  # the definition
    h_fft, grad_fft = fft.value_vjp(z, w)
    torch.testing.assert_close(h, h_fft, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_fft, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(quadratic.value(z, w), h)
    w.mul_(2.0)  # an in-place change of w must not reuse the cached form
    torch.testing.assert_close(quadratic.value(z, w), 2 * h, rtol=1e-12, atol=1e-12)


def test_tensor_sketch_approximates_polynomial_kernel():
    g = torch.Generator().manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(20, 16, generator=g), dim=1)
    fmap = TensorSketch(degree=2, n_components=20000, gamma=0.5, coef0=1.0)
    fmap.init(16, torch.Generator().manual_seed(0))
    phi = fmap(z)
    kernel = (0.5 * z @ z.T + 1.0) ** 2
    assert (phi @ phi.T - kernel).abs().max() < 0.15


def test_barrier_includes_prior_ratio_and_is_orthogonal_to_centred_input():
    pos, neg = _blobs(n=60)
    neg = torch.cat([neg, neg + 0.01])  # 60 positives, 120 negatives: prior 1/3
    barrier = oc.Barrier(TensorSketch(n_components=256)).fit(pos, neg)
    assert barrier.log_prior_ratio_ == pytest.approx(math.log(2.0))
    x = neg[:8]
    h, grad = barrier.value_and_grad(x)
    raw = x - barrier.mean_
    logits = barrier.feature_map(raw / raw.norm(dim=1, keepdim=True)) @ barrier.coef_
    torch.testing.assert_close(h, logits + barrier.intercept_ + math.log(2.0))
    cosine = (grad * raw).sum(1) / (grad.norm(dim=1) * raw.norm(dim=1))
    assert cosine.abs().max() < 1e-5


def test_torch_fit_matches_sklearn_objective():
    sklearn = pytest.importorskip("sklearn.linear_model")
    pos, neg = _blobs(d=5, n=100)
    barrier = oc.Barrier(oc.Identity(), center=True, normalize=False).fit(pos, neg)
    X = (torch.cat([pos, neg]) - barrier.mean_) / barrier.scale_
    y = torch.cat([torch.ones(100), torch.zeros(100)])
    ref = sklearn.LogisticRegression(C=1.0, tol=1e-8, max_iter=1000).fit(X.numpy(), y.numpy())
    torch.testing.assert_close(barrier.coef_, torch.tensor(ref.coef_[0]).float(), atol=2e-3, rtol=0)
    assert barrier.intercept_ == pytest.approx(float(ref.intercept_[0]), abs=2e-3)


# -- solvers ----------------------------------------------------------------------------------
def _rotation_field(x):
    return torch.stack([-x[:, 1], x[:, 0]], dim=1)  # dx/dt = J x: exact flow is a rotation


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_solvers_converge_at_their_order(solver, order):
    x0 = torch.tensor([[1.0, 0.0], [0.3, -2.0]], dtype=torch.float64)
    T = 1.0
    c, s = math.cos(T), math.sin(T)
    exact = x0 @ torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    errors = []
    for steps in (16, 32, 64):
        path = oc.integrate(_rotation_field, x0, T, steps=steps, solver=solver)
        assert path.shape == (steps + 1, 2, 2)
        assert torch.equal(path[0], x0)
        errors.append(float((path[-1] - exact).norm()))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(rate - order) < 0.25 for rate in rates), rates


@pytest.mark.parametrize("solver,evals", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_integrate_with_values_reuses_each_steps_start_evaluation(solver, evals):
    calls = {"field": 0, "value": 0}

    def radius(x):  # the value of a point: its squared norm, preserved by the exact rotation
        return (x * x).sum(1)

    def field(x):
        calls["field"] += 1
        return _rotation_field(x), radius(x)

    def value(x):
        calls["value"] += 1
        return radius(x)

    x0 = torch.tensor([[1.0, 0.0], [0.3, -2.0]], dtype=torch.float64)
    path, values = oc.integrate_with_values(field, x0, 1.0, steps=7, solver=solver, value=value)
    assert torch.equal(path, oc.integrate(_rotation_field, x0, 1.0, steps=7, solver=solver))
    assert values.shape == (8, 2)
    assert torch.equal(values, torch.stack([radius(p) for p in path]))
    assert calls == {"field": 7 * evals, "value": 1}  # no evaluation beyond the solver's own


def test_integrate_with_values_without_a_value_function():
    path, values = oc.integrate_with_values(
        lambda x: (_rotation_field(x), x[:, 0]), torch.ones(3, 2), 0.5, steps=4, solver="euler"
    )
    assert torch.equal(values, path[:, :, 0])


def test_unknown_solver_lists_valid_names():
    with pytest.raises(ValueError, match="valid solvers"):
        oc.integrate(_rotation_field, torch.zeros(1, 2), 1.0, steps=2, solver="dopri")

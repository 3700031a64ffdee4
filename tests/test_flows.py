"""The lean ODESteer flow (``method/flows.py``) against the generic solver on the same barrier.

The lean Euler loop works on ``y = a - mean`` with one matrix product per step; the generic path
evaluates the field through the feature map (FFT sketch when the quadratic form is switched off).
Both integrate the same ODE with the same steps, so they agree to float32 rounding.
"""

import copy

import pytest
import torch

import odesteer_core as oc
from odesteer_core.method import flows
from odesteer_core.method.features import TensorSketch
from odesteer_core.method.flows import quadratic_euler_flow


def _clouds(d=24, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    shared = torch.zeros(d)
    shared[3] = 8.0  # a dominant common direction, as in LLM activations
    sign = torch.randint(0, 2, (n, 2), generator=g).float() * 2 - 1
    pos = torch.randn(n, d, generator=g) + shared
    neg = torch.randn(n, d, generator=g) + shared
    pos[:, :2] += 2.0 * torch.stack([sign[:, 0], sign[:, 0]], 1)  # XOR-like signal
    neg[:, :2] += 2.0 * torch.stack([sign[:, 1], -sign[:, 1]], 1)
    return pos, neg


def _generic(steerer):
    """The same fitted steerer with the quadratic form switched off: the FFT path."""
    other = copy.deepcopy(steerer)
    other.barrier_.feature_map.quadratic_max_d = 0
    other.barrier_.feature_map.quadratic_max_d_gpu = 0
    assert other.barrier_.quadratic() is None
    return other


@pytest.fixture(scope="module", params=["odesteer", "odesteer_paper", "step_odesteer"])
def steerer(request):
    pos, neg = _clouds()
    return oc.make_steerer(request.param, n_components=1024, seed=0).fit(pos, neg)


def test_the_default_takes_the_lean_path(steerer):
    assert isinstance(steerer.barrier_.feature_map, TensorSketch)
    assert steerer.barrier_.quadratic() is not None


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_lean_path_and_values_equal_the_generic_solver(steerer, steps):
    if not steerer.is_ode and steps > 1:
        pytest.skip("one-step method: always one Euler step")
    x = _clouds(seed=1)[1][:5]
    T = oc.relative_to_T(steerer, 0.4)
    lean, h = steerer.trajectory_with_barrier(x, T, steps=steps)
    generic, h_generic = _generic(steerer).trajectory_with_barrier(x, T, steps=steps)
    assert lean.shape == generic.shape == (steps + 1, 5, x.shape[1])
    torch.testing.assert_close(lean, generic, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h, h_generic, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h, steerer.barrier(lean.reshape(-1, x.shape[1])).view_as(h))


def test_steer_trajectory_and_flow_share_one_path(steerer):
    x = _clouds(seed=2)[0][:4]
    T = oc.relative_to_T(steerer, 0.3)
    path = steerer.trajectory(x, T)
    assert torch.equal(steerer.steer(x, T), path[-1])
    assert torch.equal(steerer.trajectory_with_barrier(x, T)[0], path)
    assert torch.equal(steerer.flow(x, T, path.shape[0] - 1, "euler")[0], path)


def test_other_solvers_keep_the_generic_path(steerer):
    x = _clouds(seed=3)[1][:3]
    T = oc.relative_to_T(steerer, 0.3)
    for solver in ("midpoint", "rk4"):
        a = steerer.trajectory(x, T, steps=4, solver=solver)
        b = _generic(steerer).trajectory(x, T, steps=4, solver=solver)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_a_row_at_the_mean_moves_along_the_linear_term(steerer):
    q = steerer.barrier_.quadratic()
    x = q.mean[None].clone()
    path, h = quadratic_euler_flow(q, x, 0.5, 5, values=True)
    assert torch.isfinite(path).all() and torch.isfinite(h).all()


@pytest.mark.parametrize("rows", [1, 3])
def test_both_product_kernels_give_one_path(steerer, monkeypatch, rows):
    # At this width the step's product is MKL's; with the thresholds at 0 it is oneDNN's
    # (``linear(rows, M)``, right only because M is symmetric).
    q = steerer.barrier_.quadratic()
    if not q.onednn:
        pytest.skip("oneDNN's kernel is not available on this machine")
    assert not q.use_onednn(rows)
    x = _clouds(seed=5)[1][:rows]
    mkl = quadratic_euler_flow(q, x, 0.7, 6, values=True)
    monkeypatch.setattr(flows, "ONEDNN_MIN_D", 0)
    monkeypatch.setattr(flows, "ONEDNN_MIN_D_ONE_ROW", 0)
    assert q.use_onednn(rows)
    onednn = quadratic_euler_flow(q, x, 0.7, 6, values=True)
    for a, b in zip(onednn, mkl):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_product_kernel_follows_width_and_rows():
    def form(d):
        return flows.QuadraticBarrier(torch.zeros(d), torch.zeros(d, d), torch.zeros(d), 0.0)

    narrow, wide, widest = (form(d) for d in (256, flows.ONEDNN_MIN_D, flows.ONEDNN_MIN_D_ONE_ROW))
    if not narrow.onednn:
        pytest.skip("oneDNN's kernel is not available on this machine")
    assert [q.use_onednn(3) for q in (narrow, wide, widest)] == [False, True, True]
    assert [q.use_onednn(1) for q in (narrow, wide, widest)] == [False, False, True]
    assert not flows.QuadraticBarrier(
        torch.zeros(1024, dtype=torch.float64),
        torch.zeros(1024, 1024, dtype=torch.float64),
        torch.zeros(1024, dtype=torch.float64),
        0.0,
    ).use_onednn(3)  # oneDNN's kernel here is float32 only


def test_the_flow_keeps_the_radius_to_first_order(steerer):
    if not steerer.is_ode:
        pytest.skip("one-step method: always one Euler step")
    # The exact flow rotates a - mean (grad h is orthogonal to it); Euler drifts outward by
    # O(dt^2) per step, so more steps drift less.
    x = _clouds(seed=4)[1][:6]
    T = oc.relative_to_T(steerer, 0.3)
    mean = steerer.barrier_.mean_
    radius = (x - mean).norm(dim=1)
    drift = [
        ((steerer.steer(x, T, steps=k) - mean).norm(dim=1) / radius - 1).abs().max()
        for k in (5, 50)
    ]
    assert drift[1] < drift[0] < 0.05


@pytest.mark.parametrize(
    "method,options",
    [
        ("odesteer", {"features": "linear", "normalize": True}),
        ("odesteer", {"features": "linear", "normalize": False}),
        ("step_odesteer", {"features": "linear", "normalize": True}),
        ("iti", {}),
    ],
)
def test_linear_barriers_take_the_matrix_free_path_and_equal_the_generic_solver(method, options):
    from odesteer_core.method.ode import integrate_with_values

    pos, neg = _clouds()
    s = oc.make_steerer(method, seed=0, **options).fit(pos, neg)
    assert s.barrier_.linear() is not None and s.barrier_.quadratic() is None
    x = _clouds(seed=1)[1][:5]
    T = oc.relative_to_T(s, 0.6)
    steps = 10 if s.is_ode else 1
    lean, h = s.flow(x, T, steps, "euler", values=True)
    generic, h_generic = integrate_with_values(
        s._velocity_and_value, x, T, steps=steps, solver="euler", value=s._value
    )
    torch.testing.assert_close(lean, generic, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h, h_generic, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(h, s.barrier(lean.reshape(-1, x.shape[1])).view_as(h))
    moved = (lean[-1] - x).norm(dim=1)
    if s.barrier_.normalize:  # the path turns about the mean: each step adds dt^2 to |y|^2
        r0, r1 = (x - s.barrier_.mean_).norm(dim=1), (lean[-1] - s.barrier_.mean_).norm(dim=1)
        torch.testing.assert_close(r1.square(), r0.square() + steps * (T / steps) ** 2)
    else:  # a constant field: a straight line of length T
        torch.testing.assert_close(moved, torch.full_like(moved, T))

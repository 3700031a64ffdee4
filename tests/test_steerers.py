"""Steering methods: identities, planted answers, XOR, dtypes, persistence, bad input."""

import math

import pytest
import torch

import odesteer_core as oc

METHODS = sorted(oc.STEERERS)
FAST = {"n_components": 512}  # barrier methods: small sketch keeps the suite quick
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _make(method, **options):
    if method in ("odesteer", "odesteer_paper", "step_odesteer"):
        options = {**FAST, **options}
    return oc.make_steerer(method, **options)


def _linear_data(d=16, n=200, seed=0, shared=0.0):
    """Planted answer: the classes differ along e_0 only; optional shared mean along e_1."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.zeros(d)
    direction[0] = 1.0
    common = torch.zeros(d)
    common[1] = shared
    pos = torch.randn(n, d, generator=g) + 2.0 * direction + common
    neg = torch.randn(n, d, generator=g) - 2.0 * direction + common
    return pos, neg, direction


def _xor_data(d=6, n=400, seed=0, c=3.0):
    """Positives in quadrants (+,+) and (-,-) of the first two coordinates, negatives in the others."""
    g = torch.Generator().manual_seed(seed)

    def cloud(signs):
        centres = torch.zeros(n, d)
        which = torch.randint(0, 2, (n,), generator=g)
        centres[:, 0] = c * torch.tensor(signs)[which, 0]
        centres[:, 1] = c * torch.tensor(signs)[which, 1]
        return centres + 0.5 * torch.randn(n, d, generator=g)

    return cloud([[1.0, 1.0], [-1.0, -1.0]]), cloud([[1.0, -1.0], [-1.0, 1.0]])


@pytest.fixture(scope="module")
def fitted():
    pos, neg, _ = _linear_data()
    return {m: _make(m, seed=0).fit(pos, neg) for m in METHODS}


# -- identities ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_T_zero_returns_input_exactly(fitted, method, dtype):
    x = _linear_data(seed=3)[1][:5].to(dtype)
    s = fitted[method]
    out = s.steer(x, 0.0)
    assert out.dtype == dtype and torch.equal(out, x)
    path = s.trajectory(x, 0)
    assert all(torch.equal(p, x) for p in path)


BARRIER_METHODS = [m for m in METHODS if oc.STEERERS[m].has_barrier]


@pytest.mark.parametrize("solver", sorted(oc.SOLVERS))
@pytest.mark.parametrize("method", BARRIER_METHODS)
def test_trajectory_with_barrier_is_trajectory_and_its_barrier(fitted, method, solver):
    s = fitted[method]
    x = _linear_data(seed=4)[1][:5]
    path, values = s.trajectory_with_barrier(x, 2.0, steps=6, solver=solver)
    assert torch.equal(path, s.trajectory(x, 2.0, steps=6, solver=solver))
    assert values.shape == (path.shape[0], 5) and values.dtype == torch.float32
    torch.testing.assert_close(values, s.barrier(path.flatten(0, 1)).view_as(values))
    still, flat = s.trajectory_with_barrier(x, 0.0, steps=6, solver=solver)
    assert all(torch.equal(p, x) for p in still)
    assert torch.equal(flat, s.barrier(x).expand_as(flat))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_shapes_dtypes_and_row_independence(fitted, method, dtype):
    s = fitted[method]
    x = _linear_data(seed=4)[1][:4]
    T = oc.relative_to_T(s, 0.2)
    out = s.steer(x.to(dtype), T)
    assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out.float()).all()
    steps = s.steps if s.is_ode else 1
    path = s.trajectory(x.to(dtype), T)
    assert path.shape == (steps + 1, 4, x.shape[1]) and path.dtype == dtype
    torch.testing.assert_close(path[-1].float(), out.float(), rtol=0, atol=0)
    # each row is steered on its own: a batch equals row-by-row results
    batch = s.steer(x, T)
    rows = torch.cat([s.steer(x[i : i + 1], T) for i in range(4)])
    torch.testing.assert_close(batch, rows, rtol=1e-5, atol=1e-5)


def test_one_euler_step_equals_step_odesteer():
    pos, neg, _ = _linear_data()
    ode = _make("odesteer", seed=1).fit(pos, neg)
    step = _make("step_odesteer", seed=1).fit(pos, neg)
    x = neg[:7]
    torch.testing.assert_close(ode.steer(x, 2.5, steps=1), step.steer(x, 2.5), rtol=0, atol=0)
    torch.testing.assert_close(ode.trajectory(x, 2.5, steps=1), step.trajectory(x, 2.5))


def test_caa_is_mean_difference_step():
    pos, neg, _ = _linear_data()
    s = oc.make_steerer("caa").fit(pos, neg)
    x = neg[:5]
    torch.testing.assert_close(s.steer(x, 0.7), x + 0.7 * (pos.mean(0) - neg.mean(0)))


@pytest.mark.parametrize("method", ["odesteer", "odesteer_paper"])
def test_odesteer_field_is_unit_and_orthogonal(method):
    pos, neg, _ = _linear_data(shared=4.0)
    s = _make(method).fit(pos, neg)
    x = neg[:10]
    v = s.velocity(x)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(10))
    origin = s.barrier_.mean_  # the centre the normalisation divides by: 0 in the paper setting
    if method == "odesteer_paper":
        assert torch.equal(origin, torch.zeros_like(origin))
    assert ((v * (x - origin)).sum(1).abs() / (x - origin).norm(dim=1)).max() < 1e-5


def test_relative_strength_moves_every_method_the_same_distance(fitted):
    x = _linear_data(seed=5)[1][:6]
    for method in ("caa", "iti", "repe", "step_odesteer"):
        s = fitted[method]
        moved = (s.steer(x, oc.relative_to_T(s, 0.25)) - x).norm(dim=1)
        torch.testing.assert_close(
            moved, torch.full((6,), 0.25 * s.median_norm_), rtol=1e-4, atol=0
        )
        assert oc.T_to_relative(s, oc.relative_to_T(s, 0.25)) == pytest.approx(0.25)


# -- planted answers ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_planted_direction_is_found(fitted, method):
    """Steering negatives towards the positives increases the planted coordinate the most."""
    _, neg, direction = _linear_data(seed=7)
    s = fitted[method]
    x = neg[:50]
    moved = s.steer(x, oc.relative_to_T(s, 0.3)) - x  # (50, d)
    along = moved @ direction
    assert (along > 0).all()
    assert float(along.mean()) > 0.7 * float(moved.norm(dim=1).mean())
    if s.has_barrier:
        assert (s.barrier(x + moved) > s.barrier(x)).all()


def test_odesteer_solves_xor_where_caa_cannot():
    pos, neg = _xor_data()
    test_neg = _xor_data(seed=9)[1][:200]
    ode = oc.make_steerer("odesteer", n_components=2000).fit(pos, neg)
    caa = oc.make_steerer("caa").fit(pos, neg)

    def share_positive(x):  # the true rule: x0 * x1 > 0
        return float((x[:, 0] * x[:, 1] > 0).float().mean())

    best_caa = max(
        share_positive(caa.steer(test_neg, oc.relative_to_T(caa, r))) for r in (0.5, 1, 2)
    )
    ode_share = share_positive(ode.steer(test_neg, oc.relative_to_T(ode, 1.0), steps=20))
    assert ode_share > 0.8
    assert best_caa < 0.6
    assert (ode.barrier(ode.steer(test_neg, 6.0)) > ode.barrier(test_neg)).float().mean() > 0.9


# -- persistence ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_save_load_round_trip_is_exact(fitted, method, tmp_path):
    s = fitted[method]
    path = oc.save_steerer(s, tmp_path / f"{method}.safetensors")
    loaded = oc.load_steerer(path)
    assert type(loaded) is type(s) and loaded.get_params() == s.get_params()
    x = _linear_data(seed=11)[1][:5]
    T = oc.relative_to_T(s, 0.3)
    assert oc.relative_to_T(loaded, 0.3) == T
    assert torch.equal(loaded.steer(x, T), s.steer(x, T))
    assert torch.equal(loaded.trajectory(x, T), s.trajectory(x, T))
    if s.has_barrier:
        assert torch.equal(loaded.barrier(x), s.barrier(x))


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    from safetensors.torch import save_file

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        oc.load_steerer(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="not an ODESteer Studio steerer"):
        oc.load_steerer(foreign)
    with pytest.raises(ValueError, match="no steerer file"):
        oc.load_steerer(tmp_path / "missing.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    pos, neg, _ = _linear_data()
    good = oc.save_steerer(oc.make_steerer("caa").fit(pos, neg), tmp_path / "good.safetensors")
    truncated.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(ValueError):
        oc.load_steerer(truncated)


# -- bad input ------------------------------------------------------------------------------------------
def test_large_finite_activations_pass_the_finite_check():
    # Their sum overflows (float32: to inf; float16 above 65504), which alone must not reject them.
    from odesteer_core.method.checks import check_activations

    big = torch.full((2, 8), 3e38)
    assert check_activations(big, "x") is big
    half = torch.full((4, 8), 60000.0, dtype=torch.float16)
    assert check_activations(half, "x") is half
    with pytest.raises(ValueError, match=r"NaN or inf in 1 row\(s\)"):
        check_activations(torch.cat([big, torch.full((1, 8), math.nan)]), "x")


def test_bad_inputs_raise_clear_errors():
    pos, neg, _ = _linear_data()
    s = _make("odesteer")
    with pytest.raises(ValueError, match="not fitted"):
        s.steer(neg[:2], 1.0)
    with pytest.raises(ValueError, match="not fitted"):
        oc.relative_to_T(s, 0.1)
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        s.fit(pos[0], neg)
    with pytest.raises(TypeError, match="torch.Tensor"):
        s.fit(pos.numpy(), neg)
    with pytest.raises(TypeError, match="floating"):
        s.fit(pos.long(), neg)
    with pytest.raises(ValueError, match="NaN or inf"):
        s.fit(torch.cat([pos, torch.full((1, pos.shape[1]), math.nan)]), neg)
    with pytest.raises(ValueError, match="at least 2"):
        s.fit(pos[:1], neg)
    with pytest.raises(ValueError, match="at least 2"):
        s.fit(pos, neg[:0])
    with pytest.raises(ValueError, match="one class only"):
        s.fit(pos, pos.clone())
    with pytest.raises(ValueError, match="d=16 but neg has d=8"):
        s.fit(pos, neg[:, :8])
    s.fit(pos, neg)
    with pytest.raises(ValueError, match="fitted with d=16"):
        s.steer(neg[:2, :8], 1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        s.steer(torch.full((1, 16), math.inf), 1.0)
    with pytest.raises(ValueError, match=r"NaN or inf in 1 row\(s\)"):  # -inf + inf: a NaN sum
        s.steer(torch.tensor([[-math.inf, math.inf] + [0.0] * 14, [1.0] * 16]), 1.0)
    with pytest.raises(ValueError, match="finite"):
        s.steer(neg[:2], math.nan)
    with pytest.raises(TypeError, match="real number"):
        s.steer(neg[:2], "1.0")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        s.steer(neg[:2], 1.0, steps=0)
    with pytest.raises(TypeError, match="steps must be an int"):
        s.steer(neg[:2], 1.0, steps=2.5)
    with pytest.raises(ValueError, match="valid solvers"):
        s.steer(neg[:2], 1.0, solver="heun")
    with pytest.raises(ValueError, match="valid methods"):
        oc.make_steerer("actadd")
    with pytest.raises(TypeError, match="caa"):
        oc.make_steerer("caa", steps=3)
    with pytest.raises(ValueError, match="unknown features"):
        oc.make_steerer("odesteer", features="wavelets")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        oc.make_steerer("odesteer", steps=0)
    with pytest.raises(TypeError, match="no barrier"):
        oc.make_steerer("caa").fit(pos, neg).barrier(neg[:2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method, dtype):
    pos, neg, _ = _linear_data()
    cpu = _make(method).fit(pos, neg)
    gpu = _make(method).fit(pos.cuda(), neg.cuda())
    x = neg[:4]
    T = oc.relative_to_T(cpu, 0.2)
    out = gpu.steer(x.cuda().to(dtype), T)
    assert out.device.type == "cuda" and out.dtype == dtype
    torch.testing.assert_close(out.float().cpu(), cpu.steer(x, T), rtol=2e-2, atol=5e-2)
    if gpu.has_barrier:  # the generation hook's call, on the GPU
        path, values = gpu.trajectory_with_barrier(x.cuda().to(dtype), T)
        cpu_path, cpu_values = cpu.trajectory_with_barrier(x, T)
        assert path.dtype == dtype and values.device.type == "cuda"
        torch.testing.assert_close(path.float().cpu(), cpu_path, rtol=2e-2, atol=5e-2)
        loose = 1e-2 if dtype == torch.float32 else 0.25  # half inputs start rounded
        torch.testing.assert_close(values.cpu(), cpu_values, rtol=2e-2, atol=loose)

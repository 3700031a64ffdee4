"""Target-confidence steering (``method/target.py``): each row stops where h = logit(p)."""

import math

import pytest
import torch

import odesteer_core as oc


def _xor(d=6, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)

    def cloud(signs):
        which = torch.randint(0, 2, (n,), generator=g)
        x = 0.5 * torch.randn(n, d, generator=g)
        x[:, :2] += 2.0 * torch.tensor(signs)[which]
        return x

    return cloud([[1.0, 1.0], [-1.0, -1.0]]), cloud([[1.0, -1.0], [-1.0, 1.0]])


@pytest.fixture(scope="module")
def fitted():
    pos, neg = _xor()
    return oc.make_steerer("odesteer", n_components=256, seed=0).fit(pos, neg)


def _mixed(seed=1):
    pos, neg = _xor(seed=seed)
    return torch.cat([pos[:6], neg[:10]])


def test_rows_above_target_are_unchanged_and_others_land_on_the_level(fitted):
    x = _mixed()
    level = math.log(0.9 / 0.1)
    h0 = fitted.barrier(x)
    result = fitted.steer_to_target(x, 0.9)
    above = h0 >= level
    assert above.any() and (~above).any()
    assert torch.equal(result.x[above], x[above])
    assert (result.steps[above] == 0).all() and result.reached[above].all()
    moved = ~above & result.reached
    assert moved.sum() >= 0.9 * (~above).sum()
    h = fitted.barrier(result.x)
    assert (h[moved] >= level - 1e-4).all() and (h[moved] <= level + 2e-3).all()
    torch.testing.assert_close(result.h[moved], h[moved], rtol=0, atol=1e-4)
    assert (result.distance <= result.time + 1e-4).all()
    assert torch.equal(fitted.steer(x, target=0.9), result.x)


def test_unreachable_rows_are_reported(fitted):
    x = _mixed()[6:]
    result = fitted.steer_to_target(x, 0.999999, max_T=0.05)
    assert not result.reached.any()
    torch.testing.assert_close(result.time, torch.full((len(x),), 0.05), rtol=1e-5, atol=1e-6)


def test_path_form_is_padded_and_counts_steps(fitted):
    x = _mixed()
    result = fitted.steer_to_target(x, 0.8, path=True)
    path, values = result.path, result.values
    assert path.shape[1:] == x.shape and values.shape == path.shape[:2]
    assert path.shape[0] == int(result.steps.max()) + 1
    assert torch.equal(path[0], x) and torch.equal(path[-1], result.x)
    for i, k in enumerate(result.steps.tolist()):
        assert all(torch.equal(p, path[k, i]) for p in path[k:, i])
    torch.testing.assert_close(values, fitted.barrier(path.flatten(0, 1)).view_as(values))
    assert torch.equal(fitted.trajectory(x, target=0.8), path)
    p2, v2 = fitted.trajectory_with_barrier(x, target=0.8)
    assert torch.equal(p2, path) and torch.equal(v2, values)
    fp, fv = fitted.flow(x, 0.0, 1, "euler", values=True, target=0.8)
    assert torch.equal(fp, path) and torch.equal(fv, values)


def test_target_moves_less_than_the_fixed_horizon_reaching_as_many(fitted):
    x = _xor(seed=2)[1][:100]
    result = fitted.steer_to_target(x, 0.9)
    share = float(result.reached.float().mean())
    assert share >= 0.95
    for T in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0):
        fixed = fitted.steer(x, T)
        if float((fitted.barrier(fixed) >= math.log(9)).float().mean()) >= share:
            assert float(result.distance.mean()) < float((fixed - x).norm(dim=1).mean())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_keep_unmoved_rows_bit_for_bit(fitted, dtype):
    x = _mixed().to(dtype)
    out = fitted.steer(x, target=0.9)
    above = fitted.barrier(x) >= math.log(9)
    assert out.dtype == dtype and torch.equal(out[above], x[above])


def test_bad_targets_raise(fitted):
    x = _mixed()[:2]
    for bad in (0.0, 1.0, -0.1, 1.5, math.nan, math.inf):
        with pytest.raises(ValueError, match="between 0 and 1"):
            fitted.steer(x, target=bad)
    with pytest.raises(TypeError, match="probability"):
        fitted.steer(x, target="0.9")
    with pytest.raises(ValueError, match="either a horizon T"):
        fitted.steer(x, 1.0, target=0.9)
    with pytest.raises(ValueError, match="either a horizon T"):
        fitted.trajectory(x, target=0.9, steps=3)
    with pytest.raises(ValueError, match="max_T must be > 0"):
        fitted.steer(x, target=0.9, max_T=0.0)
    with pytest.raises(ValueError, match="max_T"):
        fitted.steer(x, 1.0, max_T=2.0)
    caa = oc.make_steerer("caa").fit(*_xor(n=20))
    with pytest.raises(TypeError, match="no barrier"):
        caa.steer(x, target=0.9)


def test_iti_and_one_step_steer_to_a_target():
    pos, neg = _xor(n=100)
    shift = torch.zeros(6)
    shift[0] = 2.0
    for method in ("iti", "step_odesteer"):
        s = oc.make_steerer(method, **({} if method == "iti" else {"n_components": 128}))
        s.fit(pos + shift, neg - shift)
        r = s.steer_to_target(neg[:20] - shift, 0.7)
        assert r.reached.float().mean() >= 0.9
        h = s.barrier(r.x)[r.steps > 0]
        assert (h >= math.log(0.7 / 0.3) - 1e-4).all()

"""Steerer files are untrusted: every tampered part is a ValueError naming the file and the problem.

``tests/test_steerers.py`` checks that every registry method round-trips bit for bit.
"""

import json
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import odesteer_core as oc

D = 16


def _data(seed=0, n=60):
    g = torch.Generator().manual_seed(seed)
    shift = torch.zeros(D)
    shift[0] = 2.0
    return torch.randn(n, D, generator=g) + shift, torch.randn(n, D, generator=g) - shift


def _saved(tmp_path, method="caa", **options):
    steerer = oc.make_steerer(method, **options).fit(*_data())
    return steerer, oc.save_steerer(steerer, tmp_path / f"{method}.safetensors")


def _read(path):
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        return tensors, dict(f.metadata())


def _tamper(path, *, tensors=None, meta=None, header=None, name="tampered.safetensors"):
    """A copy of ``path`` with its tensors, JSON metadata or raw header changed by the callables."""
    t, h = _read(path)
    m = json.loads(h["odesteer"])
    if tensors:
        tensors(t)
    if meta:
        meta(m)
    h["odesteer"] = json.dumps(m)
    if header:
        header(h)
    out = path.with_name(name)
    save_file(t, str(out), metadata=h)
    return out


def _rejects(path, problem):
    """Loading fails with a ValueError that names the file and matches ``problem``."""
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": .*" + problem):
        oc.load_steerer(path)


def _set(mapping, key, value):
    mapping[key] = value


# -- tensors ----------------------------------------------------------------------------------------
def test_wrong_shape_is_rejected_with_both_shapes(tmp_path):
    _, path = _saved(tmp_path)
    bad = _tamper(path, tensors=lambda t: _set(t, "direction_", torch.zeros(7)))
    with pytest.raises(ValueError) as err:
        oc.load_steerer(bad)
    assert str(err.value) == f"{bad}: tensor 'direction_' has shape (7,), expected (16,)"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_tensor_values_are_rejected(tmp_path, value):
    _, path = _saved(tmp_path, "linear_act")

    def poison(t):
        t["offset_"] = t["offset_"].clone()
        t["offset_"][3] = value

    _rejects(_tamper(path, tensors=poison), "tensor 'offset_' has non-finite values")


def test_extra_and_missing_tensors_are_rejected(tmp_path):
    _, path = _saved(tmp_path, "linear_act")
    extra = _tamper(path, tensors=lambda t: _set(t, "payload", torch.zeros(3)), name="extra.st")
    _rejects(extra, "unexpected tensor 'payload'")
    missing = _tamper(path, tensors=lambda t: t.pop("slope_"), name="missing.st")
    _rejects(missing, "missing tensor 'slope_'")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_non_floating_tensor_is_rejected(tmp_path, dtype):
    _, path = _saved(tmp_path)
    bad = _tamper(path, tensors=lambda t: _set(t, "direction_", torch.ones(D, dtype=dtype)))
    _rejects(bad, f"tensor 'direction_' has dtype {re.escape(str(dtype))}, expected a floating")


def test_other_floating_dtypes_load_as_float32(tmp_path):
    steerer, path = _saved(tmp_path)
    wide = _tamper(path, tensors=lambda t: _set(t, "direction_", t["direction_"].double()))
    loaded = oc.load_steerer(wide)
    assert loaded.direction_.dtype == torch.float32
    assert torch.equal(loaded.direction_, steerer.direction_)


def test_barrier_tensors_are_checked_against_the_feature_map(tmp_path):
    # select=False: the fixed degree-2 sketch (selection picks the linear map on this data)
    _, path = _saved(tmp_path, "odesteer", n_components=64, select=False)
    cases = {
        "barrier.coef_": (torch.zeros(63), r"'barrier.coef_' has shape \(63,\), expected \(64,\)"),
        "barrier.mean_": (torch.zeros(D + 1), r"'barrier.mean_' has shape \(17,\), expected"),
        "barrier.fmap.index_hash": (
            torch.zeros(2, D, dtype=torch.int64),  # the constant column is missing
            r"'barrier.fmap.index_hash' has shape \(2, 16\), expected \(2, 17\)",
        ),
    }
    for i, (name, (value, problem)) in enumerate(cases.items()):
        _rejects(
            _tamper(path, tensors=lambda t, n=name, v=value: _set(t, n, v), name=f"{i}"), problem
        )


def test_hash_tables_are_checked_for_range_and_sign(tmp_path):
    _, path = _saved(tmp_path, "step_odesteer", n_components=64, select=False)

    def out_of_range(t):
        t["barrier.fmap.index_hash"] = t["barrier.fmap.index_hash"].clone()
        t["barrier.fmap.index_hash"][0, 0] = 64

    _rejects(_tamper(path, tensors=out_of_range, name="a"), r"indices outside \[0, 64\)")
    floats = _tamper(
        path,
        tensors=lambda t: _set(t, "barrier.fmap.index_hash", t["barrier.fmap.index_hash"].float()),
        name="b",
    )
    _rejects(floats, "'barrier.fmap.index_hash' has dtype torch.float32, expected an integer")
    halves = _tamper(
        path,
        tensors=lambda t: _set(t, "barrier.fmap.sign_hash", t["barrier.fmap.sign_hash"] / 2),
        name="c",
    )
    _rejects(halves, r"'barrier.fmap.sign_hash' must hold only \+1 and -1")


def test_random_fourier_weight_shape_is_checked(tmp_path):
    _, path = _saved(tmp_path, "odesteer", features="random_fourier", n_components=32)
    bad = _tamper(path, tensors=lambda t: _set(t, "barrier.fmap.weight", torch.zeros(32, D + 1)))
    _rejects(bad, r"'barrier.fmap.weight' has shape \(32, 17\), expected \(32, 16\)")


# -- metadata -----------------------------------------------------------------------------------------
def test_foreign_metadata_keys_are_rejected(tmp_path):
    _, path = _saved(tmp_path)
    inner = _tamper(path, meta=lambda m: _set(m, "__class__", "os.system"), name="a")
    _rejects(inner, "unexpected metadata key '__class__'")
    outer = _tamper(path, header=lambda h: _set(h, "extra", "1"), name="b")
    _rejects(outer, "unexpected safetensors header key 'extra'")
    missing = _tamper(path, meta=lambda m: m.pop("params"), name="c")
    _rejects(missing, "missing metadata key 'params'")


@pytest.mark.parametrize("key", ["__class__", "forward", "velocity", "direction_", "d_"])
def test_params_accept_only_the_methods_hyper_parameters(tmp_path, key):
    _, path = _saved(tmp_path)
    bad = _tamper(path, meta=lambda m: _set(m["params"], key, 1))
    _rejects(bad, f"unknown param\\(s\\) '{key}' for caa")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("n_components", "64", "param 'n_components' must be an integer, got a string"),
        ("seed", 1.5, "param 'seed' must be an integer, got a number"),
        ("steps", True, "param 'steps' must be an integer, got a boolean"),
        ("C", float("nan"), "param 'C' must be a number"),
        ("center", "yes", "param 'center' must be a boolean"),
        ("center", None, "param 'center' = None is not a value odesteer keeps"),
        ("features", "pickle", "unknown features 'pickle'"),
        ("solver", "exec", "unknown solver 'exec'"),
        ("steps", 0, "steps must be >= 1"),
    ],
)
def test_params_types_and_values_are_checked(tmp_path, key, value, problem):
    _, path = _saved(tmp_path, "odesteer", n_components=64)
    bad = _tamper(path, meta=lambda m: _set(m["params"], key, value))
    _rejects(bad, re.escape(problem))


def test_nullable_params_may_be_null(tmp_path):
    """``gamma=None`` is how a random-Fourier barrier with the data's scale is saved."""
    steerer, path = _saved(tmp_path, "odesteer", features="random_fourier", n_components=32)
    assert steerer.get_params()["gamma"] is None
    assert oc.load_steerer(path).get_params() == steerer.get_params()


def test_method_must_be_a_known_name(tmp_path):
    _, path = _saved(tmp_path)
    _rejects(_tamper(path, meta=lambda m: _set(m, "method", ["caa"]), name="a"), "unknown method")
    _rejects(_tamper(path, meta=lambda m: _set(m, "method", "Steerer"), name="b"), "unknown method")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("speed_", "fast", "fitted scalar 'speed_' must be a finite number >= 0, got 'fast'"),
        ("speed_", float("nan"), "fitted scalar 'speed_' must be a finite number >= 0, got nan"),
        ("median_norm_", float("inf"), "fitted scalar 'median_norm_' must be a finite number"),
        ("d_", 16.0, "fitted scalar 'd_' must be an integer >= 1, got 16.0"),
        ("d_", 7, "tensor 'direction_' has shape (16,), expected (7,)"),
        ("__dict__", {}, "unexpected fitted scalar '__dict__'"),
        ("velocity", 0, "unexpected fitted scalar 'velocity'"),
    ],
)
def test_fitted_scalars_are_checked(tmp_path, key, value, problem):
    _, path = _saved(tmp_path)
    bad = _tamper(path, meta=lambda m: _set(m["fitted"], key, value))
    _rejects(bad, re.escape(problem))


def test_missing_fitted_scalar_is_rejected(tmp_path):
    _, path = _saved(tmp_path)
    _rejects(_tamper(path, meta=lambda m: m["fitted"].pop("speed_")), "missing fitted scalar")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("barrier.d_", 17, "fitted scalar 'barrier.d_' must be the width d_ = 16, got 17"),
        ("barrier.scale_", 0.0, "fitted scalar 'barrier.scale_' must be a finite number > 0"),
        ("barrier.train_accuracy_", 1.5, "'barrier.train_accuracy_' must be a number in [0, 1]"),
        ("barrier.intercept_", float("nan"), "'barrier.intercept_' must be a finite number"),
        ("barrier.n_iter_", -1, "'barrier.n_iter_' must be an integer >= 0"),
        ("barrier.feature_map", 0, "unexpected fitted scalar 'barrier.feature_map'"),
    ],
)
def test_barrier_scalars_are_checked(tmp_path, key, value, problem):
    _, path = _saved(tmp_path, "iti")
    bad = _tamper(path, meta=lambda m: _set(m["fitted"], key, value))
    _rejects(bad, re.escape(problem))


# -- what loads -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"features": "random_fourier", "n_components": 32},
        {"features": "linear"},
        {"degree": 3, "coef0": 0.0, "n_components": 64},
    ],
    ids=["random_fourier", "linear", "degree3_no_constant"],
)
def test_every_feature_map_round_trips_exactly(tmp_path, options):
    steerer, path = _saved(tmp_path, "odesteer", **options)
    loaded = oc.load_steerer(path)
    x = _data(seed=5)[1][:4]
    assert loaded.get_params() == steerer.get_params()
    assert torch.equal(loaded.steer(x, 2.0), steerer.steer(x, 2.0))
    assert torch.equal(loaded.barrier(x), steerer.barrier(x))


@pytest.mark.parametrize("method", sorted(oc.STEERERS))
def test_state_spec_describes_what_fitted_state_holds(method):
    options = {"n_components": 64} if "odesteer" in method else {}
    steerer = oc.make_steerer(method, **options).fit(*_data())
    tensors, scalars = steerer.fitted_state()
    tensor_spec, scalar_spec, dims = steerer.state_spec(D)
    assert set(tensors) == set(tensor_spec) and set(scalars) == set(scalar_spec)
    for name, (shape, _) in tensor_spec.items():
        assert tuple(tensors[name].shape) == tuple(dims[s] for s in shape)

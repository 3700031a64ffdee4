"""2-D projections: planted geometry of the exact views, the UMAP cache and transform, and
projecting whole comparisons (synthetic arms from real steerers, and the tiny offline model)."""

import json
import warnings

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

import odesteer_core as oc
from odesteer_core.lm.records import ArmRecord, Comparison
from odesteer_core.pipeline import FittedConcept
from odesteer_core.view.linear import PlaneProjector
from odesteer_core.view.umap_view import UMAPProjector, _smooth_knn_sigma

FAST = {"n_components": 512}  # small sketch: quick barrier fits


pytestmark = pytest.mark.usefixtures("one_thread")


def _clouds(d=8, n=60, seed=0, spread=None, shift=2.0):
    """Planted classes at +-shift along e_0 around a shared mean; optional per-axis spread."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.ones(d) if spread is None else torch.tensor(spread, dtype=torch.float32)
    common = torch.zeros(d)
    common[1] = 5.0
    e0 = torch.zeros(d)
    e0[0] = shift
    pos = torch.randn(n, d, generator=g) * scale + common + e0
    neg = torch.randn(n, d, generator=g) * scale + common - e0
    return pos, neg


def _synthetic_fitted(d=16, n=40, seed=0):
    pos, neg = _clouds(d=d, n=n, seed=seed)
    concept = oc.concept_from_texts(
        [f"kind reply {i}" for i in range(8)], [f"rude reply {i}" for i in range(8)], name="syn"
    )
    fitted = FittedConcept("synthetic", concept, 1, pos, neg)
    fitted.steerers["odesteer"] = oc.make_steerer("odesteer", **FAST).fit(pos, neg)
    return fitted


def _synthetic_comparison(fitted, n_tokens=5, steps=10, ode_T=3.0, one_T=1.0, seed=1):
    """Arms as ``generate_arms`` records them: float16 paths, the judge's h at every point."""
    ode, caa = fitted.odesteer, fitted.steerer("caa")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randn(n_tokens, fitted.pos.shape[1], generator=g) + fitted.pos.mean(0) * 0.5
    arms = []
    for name, steerer, T in (
        ("none", None, 0.0),
        ("one_step", caa, one_T),
        ("odesteer", ode, ode_T),
    ):
        record = ArmRecord(name, None if steerer is None else steerer.name, T, 0)
        for i in range(n_tokens):
            x = starts[i : i + 1] if name != "one_step" or i == 0 else starts[i : i + 1] + 0.3
            path = x if steerer is None else steerer.trajectory(x, T, steps=steps)[:, 0]
            h = ode.barrier(path).tolist()
            record.tokens.append(f"tok{i}")
            record.barrier_after.append(h[-1])
            record.barrier_path.append(h)
            record.paths.append(path.to(torch.float16))
        arms.append(record)
    return Comparison("prompt", "Q: prompt\nA:", arms, 1, {}), starts


# -- registry and input checks --------------------------------------------------------------


def test_unknown_projection_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown projection 'tsne'.*pca.*plane.*umap"):
        oc.make_projector("tsne")
    with pytest.raises(ValueError, match="second axis"):
        oc.make_projector("plane", second="random")
    with pytest.raises(TypeError, match="umap"):
        oc.make_projector("umap", perplexity=30)


def test_transform_before_fit_and_bad_input():
    projector = oc.make_projector("pca")
    with pytest.raises(oc.NotFittedError, match="not fitted"):
        projector.transform(np.zeros((1, 4)))
    pos, neg = _clouds(d=4, n=10)
    projector.fit(pos, neg)
    with pytest.raises(ValueError, match="d=3"):
        projector.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        projector.transform(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        oc.make_projector("plane").fit(pos[:1], neg)
    assert projector.transform(np.zeros((0, 4))).shape == (0, 2)


# -- exact views: planted answers -------------------------------------------------------------


def test_plane_puts_caa_on_x_and_class_means_at_plus_minus_half_the_gap():
    # Correlated noise in (e_0, e_2): the linear probe's direction differs from CAA's.
    pos, neg = _clouds(d=8, n=200)
    mix = torch.eye(8)
    mix[0, 2] = mix[2, 0] = 0.8
    pos, neg = pos @ mix, neg @ mix
    probe = oc.make_steerer("iti").fit(pos, neg)  # constant unit field w / |w|
    plane = PlaneProjector().fit(pos, neg, steerer=probe)
    basis = plane.components_
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-12)
    caa = (pos.mean(0) - neg.mean(0)).double().numpy()
    np.testing.assert_allclose(basis[0], caa / np.linalg.norm(caa), atol=1e-7)
    half = np.linalg.norm(caa) / 2
    means = plane.transform(torch.stack([pos.mean(0), neg.mean(0)]))
    np.testing.assert_allclose(means, [[half, 0.0], [-half, 0.0]], atol=1e-4)
    w = probe.velocity(pos[:1])[0].double().numpy()
    residual = w - (w @ basis[0]) * basis[0]
    assert plane.second_axis_ == "gradient" and np.linalg.norm(residual) > 0.05
    np.testing.assert_allclose(basis[1], residual / np.linalg.norm(residual), atol=1e-6)
    # Coordinates are distances along the axes; directions off the plane are dropped.
    off = np.zeros(8)
    off[5] = 1.0
    off -= basis.T @ (basis @ off)
    point = plane.origin_ + 1.5 * basis[0] - 0.5 * basis[1] + 3.0 * off
    np.testing.assert_allclose(plane.transform(point[None]), [[1.5, -0.5]], atol=1e-5)
    assert "CAA" in plane.axis_titles_[0] and "ODESteer" in plane.axis_titles_[1]


@pytest.mark.parametrize("steerer", [None, "caa"])
def test_plane_falls_back_to_the_widest_orthogonal_direction(steerer):
    spread = [1.0, 1.0, 1.0, 6.0, 1.0, 1.0]  # planted: most variance along e_3
    pos, neg = _clouds(d=6, n=300, spread=spread)
    field = None if steerer is None else oc.make_steerer(steerer).fit(pos, neg)  # CAA field || x
    plane = PlaneProjector().fit(pos, neg, steerer=field)
    assert plane.second_axis_ == "pca" and "variance" in plane.axis_titles_[1]
    assert abs(plane.components_[1][3]) > 0.98  # sampling noise of 600 points
    assert abs(plane.components_[0] @ plane.components_[1]) < 1e-12


def test_pca_matches_sklearn_and_points_pc1_at_the_positives():
    from sklearn.decomposition import PCA

    pos, neg = _clouds(d=6, n=150, spread=[1.0, 0.5, 3.0, 0.5, 0.5, 0.5], shift=4.0)
    projector = oc.make_projector("pca").fit(pos, neg)
    X = torch.cat([pos, neg]).double().numpy()
    reference = PCA(n_components=2).fit(X)
    expected = reference.transform(X)
    got = np.concatenate([projector.pos_2d_, projector.neg_2d_])
    signs = np.sign((got * expected).sum(0))
    np.testing.assert_allclose(got, expected * signs, atol=1e-4)
    np.testing.assert_allclose(
        projector.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-6
    )
    assert projector.pos_2d_[:, 0].mean() > 0 > projector.neg_2d_[:, 0].mean()
    assert abs(projector.components_[0][0]) > 0.9  # the planted class gap dominates PC1


# -- UMAP: cache and transform ----------------------------------------------------------------


@pytest.fixture(scope="module")
def umap_clouds():
    pos, neg = _clouds(d=24, n=40, seed=3)
    return pos.numpy(), neg.numpy()


@pytest.fixture(scope="module")
def umap_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("umap-cache")


@pytest.fixture(scope="module")
def umap_fitted(umap_clouds, umap_cache):
    # umap-learn compiles its numba code on the first fit of a process: ~15 s, once here.
    return UMAPProjector(cache_dir=umap_cache).fit(*umap_clouds, key={"model": "m", "layer": 1})


@pytest.mark.slow
def test_umap_second_fit_with_the_same_key_loads_the_cached_embedding(
    umap_fitted, umap_clouds, umap_cache
):
    assert umap_fitted.cache_hit_ is False and umap_fitted.cache_path_.is_file()
    assert list(umap_cache.glob("*.safetensors")) == [umap_fitted.cache_path_]
    again = UMAPProjector(cache_dir=umap_cache).fit(*umap_clouds, key={"model": "m", "layer": 1})
    assert again.cache_hit_ is True and again.cache_path_ == umap_fitted.cache_path_
    np.testing.assert_array_equal(again.embedding_, umap_fitted.embedding_)
    # The file is the source: a planted embedding written there comes back exactly.
    from safetensors.numpy import save_file

    planted = (umap_fitted.embedding_ + 100.0).astype(np.float32)
    scratch = umap_cache / "planted"
    scratch.mkdir()
    save_file({"embedding": planted}, str(scratch / umap_fitted.cache_path_.name))
    third = UMAPProjector(cache_dir=scratch).fit(*umap_clouds, key={"model": "m", "layer": 1})
    assert third.cache_hit_
    np.testing.assert_array_equal(third.pos_2d_, planted[: len(umap_clouds[0])])


@pytest.mark.slow
@pytest.mark.parametrize(
    "options,key",
    [({"min_dist": 0.3}, {"model": "m", "layer": 1}), ({}, {"model": "m", "layer": 2})],
)
def test_umap_a_different_key_misses_the_cache(umap_fitted, umap_clouds, tmp_path, options, key):
    base = {"model": "m", "layer": 1}
    first = UMAPProjector(cache_dir=tmp_path).fit(*umap_clouds, key=base)
    other = UMAPProjector(cache_dir=tmp_path, **options).fit(*umap_clouds, key=key)
    assert first.cache_hit_ is False and other.cache_hit_ is False
    assert other.cache_path_ != first.cache_path_
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert UMAPProjector(cache_dir=tmp_path).fit(*umap_clouds, key=base).cache_hit_


@pytest.mark.slow
def test_umap_with_a_corrupt_cache_file_refits(umap_fitted, umap_clouds, tmp_path):
    (tmp_path / umap_fitted.cache_path_.name).write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="unreadable UMAP cache"):
        again = UMAPProjector(cache_dir=tmp_path).fit(*umap_clouds, key={"model": "m", "layer": 1})
    assert again.cache_hit_ is False
    np.testing.assert_array_equal(again.embedding_, umap_fitted.embedding_)  # seeded: same map


@pytest.mark.slow
def test_umap_transform_is_umap_learns_out_of_sample_initialisation(umap_fitted, umap_clouds):
    from umap.umap_ import smooth_knn_dist  # compiled by the fit already: no extra cost

    X = np.concatenate(umap_clouds).astype(np.float64)
    Y = np.random.default_rng(0).normal(size=(30, X.shape[1])) * 1.5 + X.mean(0)
    k = umap_fitted.k_
    dist = np.sqrt(((Y[:, None] - X[None]) ** 2).sum(-1))  # brute force, (30, N)
    idx = np.argsort(dist, axis=1)[:, :k]
    near = np.take_along_axis(dist, idx, 1).astype(np.float32)
    sigma, rho = smooth_knn_dist(near, float(k), local_connectivity=0.0)  # as UMAP.transform
    assert np.all(rho == 0)
    np.testing.assert_allclose(_smooth_knn_sigma(near.astype(np.float64), k), sigma, rtol=1e-4)
    weights = np.exp(-near / sigma[:, None])
    expected = (weights[..., None] * umap_fitted.embedding_[idx]).sum(1) / weights.sum(1)[:, None]
    np.testing.assert_allclose(umap_fitted.transform(Y), expected, atol=1e-4)


@pytest.mark.slow
def test_umap_places_the_clouds_own_points_on_their_embedding(umap_fitted, umap_clouds):
    X = np.concatenate(umap_clouds)
    np.testing.assert_array_equal(umap_fitted.transform(X[::7]), umap_fitted.embedding_[::7])


# -- whole comparisons ------------------------------------------------------------------------


class _CountingPlane(PlaneProjector):
    """A real plane projector that counts its transform calls."""

    calls = 0

    def transform(self, x):
        type(self).calls += 1
        return super().transform(x)


@pytest.fixture(scope="module")
def fitted():
    return _synthetic_fitted()


def test_project_comparison_places_every_point_in_one_transform_call(fitted):
    comparison, starts = _synthetic_comparison(fitted, n_tokens=5, steps=10)
    projector = _CountingPlane().fit(fitted.pos, fitted.neg, steerer=fitted.odesteer)
    _CountingPlane.calls = 0
    view = oc.project_comparison(projector, comparison, fitted)
    assert _CountingPlane.calls == 1
    ode = comparison.arm("odesteer")
    assert view.n_tokens == 5 and view.tokens == ode.tokens and view.T == 3.0
    for i in range(5):
        assert view.paths[i].shape == (11, 2) and view.paths[i].dtype == np.float32
        np.testing.assert_allclose(view.paths[i], projector.transform(ode.paths[i]), atol=1e-5)
        np.testing.assert_array_equal(view.path_barrier[i], np.float32(ode.barrier_path[i]))
        # Unit-speed field, Euler steps: the distance moved is the ODE time, 0 .. T.
        np.testing.assert_allclose(view.path_length[i], np.linspace(0, 3.0, 11), atol=1e-2)
    # The one-step endpoint is recomputed from each ODESteer path's start, then scored by h.
    caa = fitted.steerer("caa")
    ends = caa.steer(torch.stack([p[0].float() for p in ode.paths]), 1.0)
    np.testing.assert_allclose(view.one_step_end, projector.transform(ends), atol=1e-5)
    np.testing.assert_allclose(view.one_step_barrier, fitted.odesteer.barrier(ends), atol=1e-5)
    moved = (ends - torch.stack([p[0].float() for p in ode.paths])).norm(dim=1)
    np.testing.assert_allclose(view.one_step_distance, moved, rtol=1e-5)  # CAA: T |direction|
    # Token 0 shares its start with the one-step arm's own record (float16 storage).
    own = projector.transform(comparison.arm("one_step").paths[0][-1:])
    np.testing.assert_allclose(view.one_step_end[:1], own, atol=2e-2)
    assert view.one_step_method == "caa" and set(view.arm_barriers) == set(oc.ARM_NAMES)
    json.dumps(view.to_dict())  # the API's trajectory data is plain JSON


def test_project_partial_and_empty_comparisons(fitted):
    projector = oc.fit_projector("pca", fitted)
    empty = oc.project_comparison(projector, None, fitted)
    assert empty.n_tokens == 0 and empty.pos.shape == (len(fitted.pos), 2)
    assert empty.labels == ("positive", "negative") and empty.arm_barriers == {}
    comparison, _ = _synthetic_comparison(fitted, n_tokens=0)
    assert oc.project_comparison(projector, comparison, fitted).n_tokens == 0
    comparison, _ = _synthetic_comparison(fitted, n_tokens=3)
    comparison.arms = [comparison.arm("none")]  # e.g. arms=("none",)
    view = oc.project_comparison(projector, comparison, fitted)
    assert view.n_tokens == 0 and len(view.arm_barriers["none"]) == 3
    assert view.one_step_end is None


def test_project_comparison_with_T_zero_has_one_point_paths(fitted):
    comparison, _ = _synthetic_comparison(fitted, n_tokens=2, ode_T=0.0, one_T=0.0)
    ode = comparison.arm("odesteer")
    ode.paths = [p[:1] for p in ode.paths]  # what generate_arms records when T = 0
    ode.barrier_path = [b[:1] for b in ode.barrier_path]
    view = oc.project_comparison(oc.fit_projector("plane", fitted), comparison, fitted)
    assert [p.shape for p in view.paths] == [(1, 2), (1, 2)]
    np.testing.assert_allclose(view.one_step_end, np.stack([p[0] for p in view.paths]), atol=1e-5)


def test_project_comparison_requires_a_fitted_projector(fitted):
    with pytest.raises(oc.NotFittedError, match="fit the projector"):
        oc.project_comparison(oc.make_projector("plane"), None, fitted)


def test_offline_model_end_to_end(tmp_path):
    lm = tiny_model("llama")
    concept = oc.concept_from_texts(
        [f"Thank you kindly for item {i}, I really appreciate it." for i in range(8)],
        [f"Item {i} is late again, you useless idiot." for i in range(8)],
        name="tiny-polite",
    )
    fitted = oc.fit_concept(lm, concept, progress=False, cache_dir=str(tmp_path))
    settings = oc.GenerationSettings(max_new_tokens=4)
    *_, comparison = oc.compare(lm, fitted, "Hello there", oc.Steering(strength=2.0), settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no device moves, no stray warnings
        view = oc.project_comparison(oc.fit_projector("plane", fitted), comparison, fitted)
    n = len(comparison.arm("odesteer").tokens)
    assert view.n_tokens == n >= 1 and all(p.shape == (11, 2) for p in view.paths)
    # Moving along the ODESteer field (unit barrier gradient) raises h along every path.
    assert all(b[-1] > b[0] for b in view.path_barrier)
    assert np.isfinite(np.concatenate(view.paths)).all()

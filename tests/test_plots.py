"""Figures of the trajectory view from planted data: traces, lengths, colours, empty views, export."""

import importlib.util
import shutil
import sys

import numpy as np
import pytest

import odesteer_core as oc
from odesteer_core.view.plots import ExportUnavailableError

STEPS, N_TOKENS = 10, 4


def _view(n_tokens=N_TOKENS, steps=STEPS, exact=True, one_step=True, seed=0):
    """A planted ``ProjectedComparison``: every number is known to the test."""
    rng = np.random.default_rng(seed)
    tokens = [f" word{i}" for i in range(n_tokens)]
    arms = ("none", "one_step", "odesteer")
    return oc.ProjectedComparison(
        projection="plane" if exact else "umap",
        title="CAA x barrier-gradient plane" if exact else "UMAP (approximate)",
        exact=exact,
        axis_titles=("CAA axis", "gradient axis"),
        labels=("polite", "rude"),
        pos=rng.normal(size=(30, 2)).astype(np.float32) + 2,
        neg=rng.normal(size=(25, 2)).astype(np.float32) - 2,
        tokens=tokens,
        T=2.5,
        paths=[rng.normal(size=(steps + 1, 2)).astype(np.float32) for _ in range(n_tokens)],
        path_barrier=[
            np.linspace(-1, 3 + i, steps + 1).astype(np.float32) for i in range(n_tokens)
        ],
        path_length=[np.linspace(0, 2.5, steps + 1).astype(np.float32)] * n_tokens,
        one_step_method="caa" if one_step else None,
        one_step_end=rng.normal(size=(n_tokens, 2)).astype(np.float32) if one_step else None,
        one_step_barrier=np.arange(n_tokens, dtype=np.float32) if one_step else None,
        one_step_distance=np.full(n_tokens, 2.5, dtype=np.float32) if one_step else None,
        arm_barriers={
            a: rng.normal(size=n_tokens + k).astype(np.float32) for k, a in enumerate(arms)
        },
        arm_tokens={a: tokens + ["!"] * k for k, a in enumerate(arms)},
        arm_methods={"none": None, "one_step": "caa", "odesteer": "odesteer"},
    )


def _trace(fig, name):
    found = [t for t in fig.data if t.name is not None and t.name.startswith(name)]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def test_trajectory_figure_draws_clouds_path_ends_and_one_step_endpoint():
    view = _view()
    fig = oc.trajectory_figure(view, 2)
    pos, neg = _trace(fig, "polite examples"), _trace(fig, "rude examples")
    np.testing.assert_array_equal(pos.x, view.pos[:, 0])
    np.testing.assert_array_equal(neg.y, view.neg[:, 1])
    assert pos.marker.color != neg.marker.color
    path = _trace(fig, "ODESteer path")
    assert len(path.x) == len(path.y) == STEPS + 1 and path.mode == "lines+markers"
    np.testing.assert_array_equal(path.x, view.paths[2][:, 0])
    np.testing.assert_array_equal(path.marker.color, view.path_barrier[2])  # colour = h
    assert path.marker.colorbar.title.text == "barrier h" and path.marker.cmin == -(3 + 3)
    start, end = _trace(fig, "start"), _trace(fig, "ODESteer end")
    assert (start.x[0], start.y[0]) == tuple(view.paths[2][0])
    assert (end.x[0], end.y[0]) == tuple(view.paths[2][-1])
    assert start.marker.symbol != end.marker.symbol
    one = _trace(fig, "one-step end (caa)")
    assert (one.x[0], one.y[0]) == tuple(view.paths[2][0])  # drawn from the same start
    assert (one.x[-1], one.y[-1]) == tuple(view.one_step_end[2])
    title = fig.layout.title.text
    assert "token 3/4" in title and "' word2'" in title and "plane" in title
    assert fig.layout.xaxis.title.text == "CAA axis" and fig.layout.yaxis.scaleanchor == "x"


def test_umap_view_warns_about_distortion_and_keeps_free_aspect():
    fig = oc.trajectory_figure(_view(exact=False), 0)
    assert "UMAP distorts distances" in fig.layout.title.text
    assert fig.layout.yaxis.scaleanchor is None


@pytest.mark.parametrize("token,shown", [(-1, 3), (99, 3), (0, 0), (-4, 0)])
def test_token_index_counts_from_the_end_and_is_clamped(token, shown):
    view = _view()
    fig = oc.trajectory_figure(view, token)
    np.testing.assert_array_equal(_trace(fig, "ODESteer path").x, view.paths[shown][:, 0])
    assert f"token {shown + 1}/4" in fig.layout.title.text


def test_empty_view_and_token_none_show_the_clouds_only():
    for view, token in ((_view(n_tokens=0), -1), (_view(), None)):
        fig = oc.trajectory_figure(view, token)
        assert [t.name for t in fig.data] == ["polite examples", "rude examples"]
        assert "Generate a comparison" in fig.layout.title.text
    with pytest.raises(TypeError, match="token must be an int"):
        oc.trajectory_figure(_view(), "3")


def test_view_without_one_step_arm_has_no_one_step_trace():
    fig = oc.trajectory_figure(_view(one_step=False), 1)
    assert not any(t.name.startswith("one-step") for t in fig.data)
    assert len(_trace(fig, "ODESteer path").x) == STEPS + 1


def test_barrier_figure_plots_h_against_ode_time_and_per_token_for_each_arm():
    view = _view()
    fig = oc.barrier_figure(view, 1)
    along = _trace(fig, "ODESteer h(t)")
    np.testing.assert_allclose(along.x, np.linspace(0, 2.5, STEPS + 1))
    np.testing.assert_array_equal(along.y, view.path_barrier[1])
    one = _trace(fig, "one-step end (caa)")
    assert tuple(one.x) == (2.5,) and tuple(one.y) == (1.0,)
    for arm, name in (
        ("none", "Unsteered"),
        ("one_step", "One-step (caa)"),
        ("odesteer", "ODESteer"),
    ):
        trace = next(t for t in fig.data if t.name == name)
        np.testing.assert_array_equal(trace.y, view.arm_barriers[arm])  # arms may differ in length
        np.testing.assert_array_equal(trace.x, np.arange(1, len(view.arm_barriers[arm]) + 1))
        assert trace.xaxis == "x2"
    assert along.xaxis == "x" and fig.layout.xaxis.title.text == "distance moved (ODE time)"
    assert any(s.x0 == 2 and s.x1 == 2 for s in fig.layout.shapes)  # the chosen token, 1-based


def test_barrier_figure_of_an_empty_view_says_so():
    view = _view(n_tokens=0)
    view.arm_barriers = {}  # nothing generated yet
    fig = oc.barrier_figure(view)
    assert len(fig.data) == 0
    assert any(a.text == "No tokens yet" for a in fig.layout.annotations)


def test_html_export_is_a_standalone_page():
    fig = oc.trajectory_figure(_view(), 0)
    page = oc.figure_to_html(fig)
    assert page.lower().startswith("<!doctype html>") and "</html>" in page
    assert "polite examples" in page and "plotly.js" in page.lower()
    small = oc.figure_to_html(fig, include_plotlyjs="cdn")
    assert len(small) < len(page) / 5 and "cdn.plot.ly" in small


def test_png_export_without_kaleido_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # makes `import kaleido` fail here
    with pytest.raises(ExportUnavailableError, match=r"pip install 'kaleido>=1'.*chromium"):
        oc.figure_to_png(oc.trajectory_figure(_view(), 0))


@pytest.mark.skipif(
    importlib.util.find_spec("kaleido") is None or shutil.which("chromium") is None,
    reason="PNG export needs kaleido and Chromium",
)
def test_png_export_when_kaleido_and_chromium_are_installed():
    png = oc.figure_to_png(oc.barrier_figure(_view(), 0), width=600, height=300, scale=1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000

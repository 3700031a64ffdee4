"""Plots of the trajectory view: pure ``ProjectedComparison -> plotly Figure`` functions, and export.

No state and no model calls: everything is precomputed by ``project_comparison``, so a replot for
another token is a few milliseconds of figure building. Colours agree across figures: positive
side blue and negative red (clouds and the barrier colour scale, centred on ``h = 0``), and one
colour per arm. Token indices are 0-based; ``-1`` is the latest token and indices past the end are
clamped (the slider may run ahead of a stream); the title says which token is shown.
PNG export needs ``kaleido`` (``pip install kaleido``) and a Chrome or Chromium browser
(``apt-get install chromium``); HTML export needs nothing.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from odesteer_core.view.trajectory import ProjectedComparison

__all__ = [
    "ExportUnavailableError",
    "barrier_figure",
    "figure_to_html",
    "figure_to_png",
    "trajectory_figure",
]

POS_COLOUR, NEG_COLOUR = "#2166ac", "#b2182b"  # the ends of the RdBu barrier scale
ARM_STYLE = {"none": ("Unsteered", "#7f7f7f"), "one_step": ("One-step", "#e08214")}
ARM_STYLE["odesteer"] = ("ODESteer", "#542788")
_FONT = {"family": "Inter, Arial, sans-serif", "size": 13}


class ExportUnavailableError(RuntimeError):
    """PNG export cannot run here (kaleido or a Chromium browser is missing)."""


def _pick(view: ProjectedComparison, token: int | None) -> int | None:
    """The token to show: None before the first token; negative counts from the end; clamped."""
    if token is None or view.n_tokens == 0:
        return None
    if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
        raise TypeError(f"token must be an int index or None, got {type(token).__name__}")
    token = int(token) + view.n_tokens if token < 0 else int(token)
    return min(max(token, 0), view.n_tokens - 1)


def _arm_name(view: ProjectedComparison, arm: str) -> str:
    name = ARM_STYLE.get(arm, (arm, None))[0]
    method = view.arm_methods.get(arm) if arm == "one_step" else None
    return f"{name} ({method})" if method else name


def _token_text(view: ProjectedComparison, i: int) -> str:
    return html.escape(repr(view.tokens[i]) if i < len(view.tokens) else "?", quote=False)


def _xy(points: np.ndarray) -> dict:
    """Scatter coordinates of (n, 2) points."""
    return {"x": points[:, 0], "y": points[:, 1]}


def _barrier_range(view: ProjectedComparison) -> float:
    """One symmetric colour range for every token, so colours compare while sliding."""
    values = [np.abs(b[np.isfinite(b)]) for b in view.path_barrier]
    top = max((float(v.max()) for v in values if v.size), default=0.0)
    return top if top > 0 else 1.0


def trajectory_figure(
    view: ProjectedComparison, token: int | None = -1, *, height: int = 540, zoom: bool = False
) -> go.Figure:
    """The two concept clouds, and for ``token`` its ODESteer path and one-step endpoint.

    The path has ``steps + 1`` points, coloured by the barrier ``h`` at each (colour bar; blue is
    the positive side), its start and end marked; the one-step endpoint is drawn from the same
    start. Exact views get equal axis units.

    Args:
        view: From ``project_comparison``.
        token: 0-based token index (``-1``: latest; clamped); None or no tokens: clouds only.
        height: Figure height in pixels.
        zoom: Fit the axes to the token's path and one-step endpoint (a short path otherwise
            hides under its markers at the clouds' scale); the clouds stay drawn around them.
    """
    pos_label, neg_label = view.labels
    fig = go.Figure()
    for label, xy, colour in ((pos_label, view.pos, POS_COLOUR), (neg_label, view.neg, NEG_COLOUR)):
        fig.add_trace(
            go.Scatter(
                **_xy(xy),
                mode="markers",
                name=f"{label} examples",
                marker={"color": colour, "size": 6, "opacity": 0.45},
                hovertemplate=f"{html.escape(label)} example<extra></extra>",
            )
        )
    i = _pick(view, token)
    if i is None:
        title = f"{view.title}: {html.escape(pos_label)} vs {html.escape(neg_label)} examples"
        subtitle = "Generate a comparison to see each token's steering path."
    else:
        path, h = view.paths[i], view.path_barrier[i]
        t = view.path_length[i]
        top = _barrier_range(view)
        fig.add_trace(
            go.Scatter(
                **_xy(path),
                mode="lines+markers",
                name=f"ODESteer path ({len(path)} points)",
                line={"color": "#444444", "width": 2},
                marker={
                    "color": h,
                    "colorscale": "RdBu",
                    "cmin": -top,
                    "cmax": top,
                    "size": 10,
                    "line": {"color": "#222222", "width": 1},
                    "colorbar": {"title": {"text": "barrier h"}, "x": 1.02, "len": 0.75},
                },
                customdata=np.stack([t, h], axis=1),
                hovertemplate="moved %{customdata[0]:.3g}<br>h = %{customdata[1]:.3g}"
                "<extra></extra>",
            )
        )
        for name, k, symbol in (
            ("start (before the edit)", 0, "circle-open"),
            ("ODESteer end", -1, "star"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=[path[k, 0]],
                    y=[path[k, 1]],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 18, "color": ARM_STYLE["odesteer"][1]},
                    marker_line_width=2,
                    hovertemplate=f"{name}<br>h = {h[k]:.3g}<extra></extra>",
                )
            )
        if view.one_step_end is not None:
            end, h_end = view.one_step_end[i], float(view.one_step_barrier[i])
            name = f"one-step end ({view.one_step_method})"
            fig.add_trace(
                go.Scatter(
                    x=[path[0, 0], end[0]],
                    y=[path[0, 1], end[1]],
                    mode="lines+markers",
                    name=name,
                    line={"color": ARM_STYLE["one_step"][1], "dash": "dash", "width": 2},
                    marker={"symbol": "x", "size": [0, 16], "color": ARM_STYLE["one_step"][1]},
                    hovertemplate=f"{name}<br>h = {h_end:.3g}<extra></extra>",
                )
            )
        steps = len(path) - 1
        title = f"{view.title}: token {i + 1}/{view.n_tokens} {_token_text(view, i)}"
        how = f"to confidence {view.target:g}" if view.target is not None else f"T = {view.T:.3g}"
        subtitle = f"ODESteer path, {how}, {steps} steps; colour = barrier h"
    if not view.exact:
        subtitle += " · UMAP distorts distances: use the plane or PCA view to measure"
    fig.update_layout(
        title={"text": f"{title}<br><sup>{html.escape(subtitle)}</sup>"},
        xaxis_title=view.axis_titles[0],
        yaxis_title=view.axis_titles[1],
        height=height,
        font=_FONT,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
        margin={"t": 80, "r": 20},
    )
    if zoom and i is not None:
        points = [view.paths[i]]
        if view.one_step_end is not None:
            points.append(view.one_step_end[i : i + 1])
        points = np.concatenate(points)
        low, high = points.min(0), points.max(0)
        pad = 0.15 * max(float((high - low).max()), 1e-6)
        fig.update_xaxes(range=[low[0] - pad, high[0] + pad])
        fig.update_yaxes(range=[low[1] - pad, high[1] + pad])
    if view.exact:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)  # equal units: distances look true
    return fig


def barrier_figure(
    view: ProjectedComparison, token: int | None = -1, *, height: int = 540
) -> go.Figure:
    """Barrier values: along one token's path (left) and after the edit for every token (right).

    Left: ``h`` along ``token``'s ODESteer path against the distance moved (the ODE time: the
    field has unit speed), with the one-step endpoint's ``h`` (same start) at its own distance.
    Right: ``h`` after the edit for every generated token of each arm, the chosen token marked;
    the dotted line is ``h = 0``.

    Args:
        view: From ``project_comparison``.
        token: 0-based token index (``-1``: latest; clamped); None: per-token panel only.
        height: Figure height in pixels.
    """
    i = _pick(view, token)
    left = "h along the path" + (f" (token {i + 1})" if i is not None else "")
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(left, "h per token, after the edit"),
        horizontal_spacing=0.12,
    )
    if i is not None:
        h, t = view.path_barrier[i], view.path_length[i]
        colour = ARM_STYLE["odesteer"][1]
        fig.add_trace(
            go.Scatter(
                x=t,
                y=h,
                mode="lines+markers",
                name="ODESteer h(t) along the path",
                line={"color": colour, "dash": "dash"},
                marker={"symbol": "diamond"},
            ),
            row=1,
            col=1,
        )
        if view.one_step_barrier is not None:
            fig.add_trace(
                go.Scatter(
                    x=[float(view.one_step_distance[i])],
                    y=[float(view.one_step_barrier[i])],
                    mode="markers",
                    name=f"one-step end ({view.one_step_method})",
                    marker={"symbol": "x", "size": 14, "color": ARM_STYLE["one_step"][1]},
                ),
                row=1,
                col=1,
            )
    for arm, values in view.arm_barriers.items():
        tokens = [html.escape(repr(s), quote=False) for s in view.arm_tokens.get(arm, [])]
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(values) + 1),
                y=values,
                mode="lines+markers",
                name=_arm_name(view, arm),
                line_color=ARM_STYLE.get(arm, (None, None))[1],
                customdata=tokens,
                hovertemplate="token %{x}: %{customdata}<br>h = %{y:.3g}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    for col in (1, 2):
        fig.add_hline(y=0, line_dash="dot", line_color="#999999", row=1, col=col)
    if i is not None:
        fig.add_vline(x=i + 1, line_dash="dash", line_color="#bbbbbb", row=1, col=2)
    if not view.arm_barriers:
        fig.add_annotation(
            text="No tokens yet", xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False
        )
    fig.update_xaxes(title_text="distance moved (ODE time)", row=1, col=1)
    fig.update_xaxes(title_text="generated token", row=1, col=2)
    fig.update_yaxes(title_text="barrier h = log p+/p-", row=1, col=1)
    fig.update_layout(
        height=height,
        font=_FONT,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 60, "r": 20},
    )
    return fig


def figure_to_html(
    fig: go.Figure, *, include_plotlyjs: bool | str = True, full_html: bool = True
) -> str:
    """A standalone HTML page (plotly.js embedded, works offline); ``"cdn"`` makes it small."""
    return fig.to_html(include_plotlyjs=include_plotlyjs, full_html=full_html)


def figure_to_png(
    fig: go.Figure, *, width: int = 1000, height: int | None = None, scale: float = 2.0
) -> bytes:
    """PNG bytes of ``fig`` via kaleido and a headless Chromium (about 3 s per call).

    Raises:
        ExportUnavailableError: kaleido is not installed or finds no Chrome/Chromium; the
            message says what to install. ``figure_to_html`` still works.
    """
    try:
        import kaleido  # noqa: F401  (plotly imports it too; checked here for a clear message)
    except ImportError:
        raise ExportUnavailableError(
            "PNG export needs the kaleido package and a Chrome/Chromium browser: "
            "pip install 'kaleido>=1' and apt-get install chromium (or set BROWSER_PATH). "
            "HTML export works without them."
        ) from None
    height = height or fig.layout.height or 540
    try:
        return fig.to_image(format="png", width=width, height=height, scale=scale)
    except (RuntimeError, OSError) as err:  # choreographer: no browser, or it failed to start
        raise ExportUnavailableError(
            f"PNG export could not start a Chrome/Chromium browser ({err}); install one "
            "(apt-get install chromium) or point BROWSER_PATH at it"
        ) from err

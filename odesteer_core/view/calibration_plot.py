"""The barrier's reliability diagram: predicted ``P(positive)`` against the observed share.

Drawn from a ``CalibrationReport`` (``method/calibration.py``): out-of-fold predictions of the
concept's own activations, in equal-width bins. A calibrated barrier follows the diagonal; the
bars show how many activations fell in each bin.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from odesteer_core.method.calibration import CalibrationReport

__all__ = ["quality_line", "reliability_figure"]


def quality_line(report: CalibrationReport | None, layer: int) -> str:
    """One Markdown line for the page: the barrier's held-out numbers, with a warning if any."""
    if report is None:
        return f"Barrier at layer {layer}: no held-out report (fitted with fixed settings)."
    line = f"Barrier at layer {layer}: {report.summary()}"
    flow_notes = (note for note in report.notes if note.startswith(("flow check", "no flow check")))
    line += "".join(f" ({note})" for note in flow_notes)  # why the choice (or no check) was made
    if report.warning:
        line = f"⚠️ {line}"
    return line


def reliability_figure(report: CalibrationReport, *, height: int = 360) -> go.Figure:
    """Mean predicted probability vs share of positives per non-empty bin, and bin counts."""
    width = 1.0 / len(report.bin_count)
    bins = [  # (bin centre, mean prediction, share of positives, count) of the non-empty bins
        ((i + 0.5) * width, c, a, n)
        for i, (c, a, n) in enumerate(
            zip(report.bin_confidence, report.bin_accuracy, report.bin_count)
        )
        if n > 0
    ]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=[centre for centre, *_ in bins],
            y=[n for *_, n in bins],
            width=width * 0.9,
            name="activations in the bin",
            marker_color="#d9d9d9",
            hovertemplate="%{y} activations<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
            line={"color": "#999999", "dash": "dash"}, hoverinfo="skip",
        ),
        secondary_y=False,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=[c for _, c, _, _ in bins],
            y=[a for _, _, a, _ in bins],
            mode="lines+markers",
            name="barrier (held-out)",
            line={"color": "#2a9d8f", "width": 3},
            hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}<extra></extra>",
        ),
        secondary_y=False,
    )
    title = (
        f"Reliability: accuracy {report.accuracy:.2f}, log-loss {report.log_loss:.2f}, "
        f"ECE {report.ece:.3f}"
    )
    fig.update_layout(
        title={"text": html.escape(title)},
        height=height,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.25},
        margin={"t": 50, "r": 20},
        bargap=0,
    )
    fig.update_xaxes(title_text="predicted P(positive)", range=[0, 1])
    fig.update_yaxes(title_text="share of positives", range=[0, 1], secondary_y=False)
    fig.update_yaxes(title_text="count", secondary_y=True, showgrid=False)
    return fig

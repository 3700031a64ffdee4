"""The layer sweep as a figure: held-out accuracy, log-loss and ECE of the barrier per layer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from odesteer_core.pipeline.layer_sweep import LayerSweep

__all__ = ["layer_sweep_figure"]


def layer_sweep_figure(sweep: LayerSweep) -> go.Figure:
    """Accuracy (left axis) and log-loss / ECE (right axis) per layer; chance levels dashed."""
    layers = [r["layer"] for r in sweep.rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=layers, y=[r["accuracy"] for r in sweep.rows], name="held-out accuracy",
                   mode="lines+markers", line={"color": "#2a9d8f", "width": 3}),
        secondary_y=False,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=layers, y=[r["log_loss"] for r in sweep.rows], name="log-loss",
                   mode="lines+markers", line={"color": "#e76f51"}),
        secondary_y=True,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=layers, y=[r["ece"] for r in sweep.rows], name="ECE",
                   mode="lines+markers", line={"color": "#8d99ae", "dash": "dot"}),
        secondary_y=True,
    )  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dash", line_color="#2a9d8f", opacity=0.5, secondary_y=False)
    fig.add_hline(
        y=math.log(2), line_dash="dash", line_color="#e76f51", opacity=0.5, secondary_y=True
    )
    best = sweep.best()
    fig.add_vline(x=best, line_color="#444", opacity=0.3)
    fig.update_layout(
        title=f"Barrier quality per layer: {sweep.concept} on {sweep.model_name} (best: {best})",
        xaxis_title="decoder layer (0-based)",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 60, "b": 40},
    )
    fig.update_yaxes(title_text="accuracy (chance 0.5)", range=[0, 1.02], secondary_y=False)
    fig.update_yaxes(title_text="log-loss (coin ln 2) / ECE", rangemode="tozero", secondary_y=True)
    return fig

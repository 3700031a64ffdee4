"""Views of a comparison: 2-D projections of the clouds and paths, plots, token highlighting.

``fit_projector`` fits a named projection on a fitted concept's clouds; ``project_comparison``
places every token's ODESteer path; ``trajectory_figure`` and ``barrier_figure`` draw them.
"""

from odesteer_core.view.base import Projector
from odesteer_core.view.plots import (
    ExportUnavailableError,
    barrier_figure,
    figure_to_html,
    figure_to_png,
    trajectory_figure,
)
from odesteer_core.view.registry import PROJECTIONS, fit_projector, make_projector
from odesteer_core.view.trajectory import ProjectedComparison, project_comparison

__all__ = [
    "PROJECTIONS",
    "ExportUnavailableError",
    "ProjectedComparison",
    "Projector",
    "barrier_figure",
    "figure_to_html",
    "figure_to_png",
    "fit_projector",
    "make_projector",
    "project_comparison",
    "trajectory_figure",
]

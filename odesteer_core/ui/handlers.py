"""The app's event handlers, free of layout: each takes named values and returns named updates.

A handler validates its input once (``CompareRequest.from_values``), calls one core function and
returns a ``PageUpdate`` (fields left ``None`` stay as they are on the page). Per-user objects
(the last comparison, its projected paths, the chosen model) live in the user's ``gr.State``
dict; shared ones (models, fitted concepts, projectors) in the ``Studio`` bound at start.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

import odesteer_core as oc
from odesteer_core.pipeline.request import CompareRequest
from odesteer_core.studio import CUSTOM, Studio, stream_in_thread
from odesteer_core.view import plots
from odesteer_core.view.calibration_plot import quality_line, reliability_figure
from odesteer_core.view.highlight import arm_html, arm_readout, edit_scale
from odesteer_core.view.layer_plot import layer_sweep_figure
from odesteer_core.view.trajectory import project_comparison

__all__ = [
    "STREAM_INTERVAL",
    "PageUpdate",
    "bind_studio",
    "current_studio",
    "fit_concept",
    "generate",
    "load_model",
    "model_line",
    "export",
    "quality",
    "replot",
    "stream_comparison",
    "sweep",
]

STREAM_INTERVAL = 0.1  # seconds between streamed updates (the first and last always go out)
_STUDIO: list[Studio] = []  # the one Studio of this process, bound by ``bind_studio``


def bind_studio(studio: Studio) -> None:
    """Make ``studio`` the backend of every handler (the app builds it once, at start)."""
    _STUDIO[:] = [studio]


def current_studio() -> Studio:
    if not _STUDIO:
        raise ValueError("The app is still starting; try again in a few seconds.")
    return _STUDIO[0]


@dataclass
class PageUpdate:
    """One update of the page; ``None`` leaves a part as it is."""

    arm_html: list[str] | None = None  # one per arm: none, one_step, odesteer
    readouts: list[str] | None = None
    status: str | None = None
    state: dict | None = None
    token_slider: dict | None = None  # gr.update(...) arguments of the token slider
    trajectory: go.Figure | None = None
    barrier: go.Figure | None = None
    quality: str | None = None  # the fitted barrier's held-out numbers, one line
    reliability: go.Figure | None = None  # its reliability diagram
    sweep_table: str | None = None  # the layer sweep: a Markdown table ...
    sweep_plot: go.Figure | None = None  # ... and its figure


def model_line(lm: oc.LoadedLM) -> str:
    """Which model runs where: name, depth, device, dtype, and the CPU linear kernel."""
    dtype = str(lm.dtype).removeprefix("torch.")
    kernel = ", oneDNN linear kernels" if lm.onednn_layers else ""
    return f"Loaded: `{lm.name}`, {lm.n_layers} layers on {lm.device.type} ({dtype}{kernel})"


def load_model(name: str, state: dict) -> tuple[str, dict]:
    """Load another model for this user (allow-listed on public deployments); shared, cached."""
    lm = current_studio().model(name)
    note = f" {lm.notice}" if lm.notice else ""
    status = f"{model_line(lm)}; default steering layer {lm.default_layer()}.{note}"
    return status, {**state, "model": lm.name, "comparison": None, "projected": {}}


def concept_prompts(concept: str) -> list[str]:
    """The concept's example prompts (none for a custom concept)."""
    return [] if concept == CUSTOM else list(current_studio().concept(concept).prompts[:12])


def model_and_concept(form: Mapping[str, Any], state: dict) -> tuple[oc.LoadedLM, oc.Concept]:
    """The user's model and the form's concept: ``concept`` (a name), ``pos``, ``neg`` (pasted
    lines), ``upload`` (a file that Gradio received from this user)."""
    studio = current_studio()
    lm = studio.model(state.get("model") or studio.default_model)
    spec = studio.concept(
        form["concept"],
        positive_text=form.get("pos") or "",
        negative_text=form.get("neg") or "",
        upload=form.get("upload"),
    )
    return lm, spec


def fit_concept(
    form: Mapping[str, Any], state: dict, progress: Callable | None = None
) -> tuple[oc.LoadedLM, oc.FittedConcept]:
    """The user's model and the concept of ``form`` fitted on it (once; shared by all users).

    ``form`` keys: ``concept``, ``pos``, ``neg`` (pasted lines), ``upload`` (a file that Gradio
    received from this user), ``layer`` (-1 or None: the model's default).
    """
    studio = current_studio()
    lm, spec = model_and_concept(form, state)
    layer = form.get("layer")
    layer = None if layer in (None, "", -1) else layer
    return lm, studio.fit(lm, spec, layer=layer, progress=progress)


def quality(fitted: oc.FittedConcept) -> PageUpdate:
    """The fitted barrier's held-out quality: a line next to the concept and its diagram."""
    report = getattr(fitted.odesteer, "report_", None)
    return PageUpdate(
        quality=quality_line(report, fitted.layer),
        reliability=reliability_figure(report) if report is not None else None,
    )


def sweep(form: Mapping[str, Any], state: dict) -> PageUpdate:
    """The concept's barrier quality at layers spread over the user's model (``Studio.sweep``):
    which layer separates the concept best. Custom concepts as the form gives them."""
    result = current_studio().sweep(*model_and_concept(form, state))
    seconds = sum(result.timing.values())
    note = (
        f"\n\nBest layer: **{result.best()}** (lowest held-out log-loss); set it under "
        f"Layer above. {len(result.rows)} layers, {seconds:.1f} s."
    )
    return PageUpdate(sweep_table=result.table() + note, sweep_plot=layer_sweep_figure(result))


def fit_message(fitted: oc.FittedConcept) -> str:
    t = fitted.timing
    return (
        f"Fitted **{fitted.concept.name}** at layer {fitted.layer}: {len(fitted.pos)} positive and "
        f"{len(fitted.neg)} negative activations ({t.get('extract_s', 0):.1f} s extraction, "
        f"{t.get('fit_odesteer_s', 0):.1f} s ODESteer fit)."
    )


def stream_comparison(
    lm: oc.LoadedLM, fitted: oc.FittedConcept, request: CompareRequest, interval: float
) -> Iterator[oc.Comparison]:
    """``oc.compare`` streamed from a thread of its own (see ``stream_in_thread``), throttled;
    cancelled inside the forward pass in progress when the consumer goes away."""
    cancel = threading.Event()
    return stream_in_thread(
        lambda: oc.compare(
            lm, fitted, request.prompt, request.steering, request.generation, cancel=cancel
        ),
        min_interval=interval,
        cancel=cancel,
    )


def request_of(form: Mapping[str, Any]) -> CompareRequest:
    """The form's comparison settings, checked once (the concept source is checked at fit)."""
    keys = (
        "prompt", "concept", "strength", "steps", "solver", "one_step", "positions", "layer",
        "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty",
        "seed",
    )  # fmt: skip
    values = {k: form[k] for k in keys if k in form}
    if values.get("layer") is None:
        values["layer"] = -1
    if form.get("target_mode"):
        values["target"] = form.get("target")
    return CompareRequest.from_values(values)


def generate(
    form: Mapping[str, Any], state: dict, progress: Callable | None = None
) -> Iterator[PageUpdate]:
    """Stream the three arms; when done, project the paths and draw the plots."""
    request = request_of(form)
    yield PageUpdate(
        status="Preparing the concept (its first use extracts activations and fits ODESteer and "
        "the projections)…"
    )
    lm, fitted = fit_concept({**form, "layer": request.layer}, state, progress=progress)
    yield quality(fitted)
    comparison = None
    for comparison in stream_comparison(lm, fitted, request, STREAM_INTERVAL):
        n = [len(arm.tokens) for arm in comparison.arms]
        scale = edit_scale(comparison.arms)
        yield PageUpdate(
            arm_html=[arm_html(a, n=k, scale=scale) for a, k in zip(comparison.arms, n)],
            readouts=[arm_readout(a, n=k) for a, k in zip(comparison.arms, n)],
            status=status_line(comparison),
        )
    if comparison is None:
        return
    state = {**state, "fitted": fitted, "comparison": comparison, "projected": {}}
    trajectory, barrier = figures(state, form.get("projection", "plane"), 1, form.get("zoom"))
    n_tokens = max(len(comparison.arm("odesteer").tokens), 1)
    yield PageUpdate(
        status=status_line(comparison),
        state=state,
        token_slider={"minimum": 1, "maximum": n_tokens, "value": 1, "interactive": n_tokens > 1},
        trajectory=trajectory,
        barrier=barrier,
    )


def status_line(comparison: oc.Comparison) -> str:
    parts = [f"⚠️ {n}" for n in comparison.notices]
    timing = comparison.timing
    if "tokens" in timing:
        rate = timing["tokens"] / max(timing["generate_s"], 1e-9)
        parts.append(
            f"{timing['tokens']} tokens per arm, {rate:.1f} tokens/s, first token after "
            f"{timing.get('first_token_s', 0):.2f} s · layer {comparison.layer}"
        )
    return "  \n".join(parts)


def projected(state: dict, projection: str) -> oc.ProjectedComparison:
    """The comparison's paths under ``projection``, projected once per comparison."""
    done = state["projected"].get(projection)
    if done is None:
        fitted = state["fitted"]
        projector = current_studio().projector(fitted, projection)
        done = state["projected"][projection] = project_comparison(
            projector, state["comparison"], fitted
        )
    return done


def token_index(token: int) -> int:
    """The 0-based index of the slider's 1-based token number."""
    return max(int(token), 1) - 1


def figures(
    state: dict, projection: str, token: int, zoom: bool = False
) -> tuple[go.Figure | None, go.Figure | None]:
    """Trajectory and barrier figures for token ``token`` (1-based); None before any comparison."""
    if state.get("comparison") is None:
        return None, None
    paths, index = projected(state, projection), token_index(token)
    return (
        plots.trajectory_figure(paths, index, zoom=bool(zoom)),
        plots.barrier_figure(paths, index),
    )


def replot(state: dict, projection: str, token: int, zoom: bool) -> PageUpdate:
    """Plots for another token or projection: indexing into precomputed paths, no refit."""
    trajectory, barrier = figures(state, projection, token, zoom)
    return PageUpdate(state=state, trajectory=trajectory, barrier=barrier)


def export(state: dict, projection: str, token: int, zoom: bool, what: str) -> str:
    """Write the fitted steerer, the comparison or the plot to a new temporary file."""
    comparison, fitted = state.get("comparison"), state.get("fitted")
    if comparison is None:
        raise ValueError("Nothing to export yet: generate a comparison first.")
    folder = Path(tempfile.mkdtemp(prefix="odesteer-export-"))
    if what == "steerer":
        path = folder / f"odesteer-{fitted.concept.name}-layer{fitted.layer}.safetensors"
        oc.save_steerer(fitted.odesteer, path)
    elif what == "comparison":
        path = folder / "comparison.json"
        path.write_text(json.dumps(comparison.to_dict(include_paths=True), indent=1))
    elif what in ("html", "png"):
        figure = plots.trajectory_figure(
            projected(state, projection), token_index(token), zoom=bool(zoom)
        )
        path = folder / f"trajectory.{what}"
        if what == "html":
            path.write_text(plots.figure_to_html(figure))
        else:
            try:
                path.write_bytes(plots.figure_to_png(figure))
            except plots.ExportUnavailableError as err:
                raise ValueError(str(err)) from err
    else:
        raise ValueError(f"unknown export {what!r}")
    return str(path)

"""The page: its components, named, in the order a user meets them (layout only, no behaviour).

``build_page`` lays out the Blocks content and returns a ``Page`` that names every component, so
that events take and give values by name (``Page.form_values``, ``Page.updates``) instead of by
position in long tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

import odesteer_core as oc
from odesteer_core.pipeline.request import LIMITS, MAX_NEW_TOKENS, MAX_STEPS
from odesteer_core.ui.handlers import PageUpdate, model_line
from odesteer_core.view.highlight import arm_html
from odesteer_core.view.registry import PROJECTIONS

__all__ = ["ARM_TITLES", "CSS", "Page", "build_page"]

ARM_TITLES = {"none": "Unsteered", "one_step": "One-step", "odesteer": "ODESteer"}
PROJECTION_LABELS = {
    "umap": "UMAP",
    "pca": "PCA (exact, linear)",
    "plane": "CAA × gradient plane (exact)",
}
CSS = """
.arm-text { font-family: ui-monospace, monospace; font-size: 0.92em; line-height: 1.5;
            white-space: pre-wrap; min-height: 8em; padding: 0.5em; }
.arm-text span { border-radius: 3px; }
.arm-text { overflow-wrap: anywhere; word-break: break-word; overflow-x: auto; }
"""
FORM = (  # the components whose values make one generation request, by name
    "prompt", "concept", "pos", "neg", "upload", "one_step", "strength", "target_mode", "target",
    "steps", "solver", "layer", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k",
    "repetition_penalty", "seed", "positions", "projection", "zoom",
)  # fmt: skip


@dataclass
class Page:
    """Every component an event reads or writes, by name."""

    state: gr.State
    prompt: gr.Textbox
    examples: gr.Dropdown
    run: gr.Button
    stop: gr.Button
    concept: gr.Dropdown
    one_step: gr.Dropdown
    strength: gr.Slider
    target_mode: gr.Checkbox
    target: gr.Slider
    steps: gr.Slider
    solver: gr.Radio
    custom_box: gr.Accordion
    pos: gr.Textbox
    neg: gr.Textbox
    upload: gr.File
    fit_button: gr.Button
    fit_status: gr.Markdown
    model_name: gr.Dropdown
    load_button: gr.Button
    model_status: gr.Markdown
    layer: gr.Number
    max_new_tokens: gr.Slider
    seed: gr.Number
    positions: gr.Radio
    do_sample: gr.Checkbox
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    repetition_penalty: gr.Slider
    arm_html: list[gr.HTML]
    readouts: list[gr.Markdown]
    status: gr.Markdown
    projection: gr.Radio
    zoom: gr.Checkbox
    token: gr.Slider
    trajectory: gr.Plot
    barrier: gr.Plot
    quality: gr.Markdown
    reliability: gr.Plot
    sweep_button: gr.Button
    sweep_table: gr.Markdown
    sweep_plot: gr.Plot
    exports: dict[str, gr.Button]
    download: gr.File

    def form_inputs(self) -> set:
        """The form's components and the state: Gradio passes their values as one dict."""
        return {getattr(self, name) for name in FORM} | {self.state}

    def form_values(self, data: dict) -> dict[str, Any]:
        """``{component: value}`` from Gradio -> ``{name: value}`` for the handlers."""
        return {name: data[getattr(self, name)] for name in FORM}

    def outputs(self) -> list:
        """Every component a ``PageUpdate`` may change."""
        return [
            *self.arm_html, *self.readouts, self.status, self.state, self.token,
            self.trajectory, self.barrier, self.quality, self.reliability, self.sweep_table,
            self.sweep_plot,
        ]  # fmt: skip

    def updates(self, update: PageUpdate) -> dict:
        """A ``PageUpdate`` as Gradio's ``{component: value}``; parts left None are not sent."""
        out: dict = {}
        for f in fields(update):
            value = getattr(update, f.name)
            if value is None:
                continue
            if f.name in ("arm_html", "readouts"):
                out.update(zip(getattr(self, f.name), value))
            elif f.name == "token_slider":
                out[self.token] = gr.update(**value)
            else:
                out[getattr(self, f.name)] = value
        return out


def _header(lm: oc.LoadedLM) -> None:
    gr.Markdown(
        "# ODESteer Studio\nOne prompt, three generations in one batch: **unsteered**, "
        "**one-step** steering (activation addition), and **ODESteer** (an ODE flow along the "
        "gradient of a barrier fitted on positive vs negative activations). Tokens are tinted "
        f"by how far steering moved their activation. Model: `{lm.name}`, steering layer "
        f"{lm.default_layer()} of {lm.n_layers} by default."
    )
    if lm.notice:  # a preset model: say what it is
        gr.Markdown(f"{'⚠️ ' if lm.offline_test_model else 'ℹ️ '}{lm.notice}", elem_id="notice")


def _slider(name: str, value: float, step: float, label: str) -> gr.Slider:
    low, high = LIMITS[name]
    return gr.Slider(low, high, value, step=step, label=label)


def build_page(lm: oc.LoadedLM, concepts: list[str], allowed: tuple[str, ...] | None) -> Page:
    """Lay out the page inside the current ``gr.Blocks``; returns its named components."""
    c: dict[str, Any] = {"state": gr.State({})}
    _header(lm)
    with gr.Row():
        with gr.Column(scale=3):
            c["prompt"] = gr.Textbox(label="Prompt", lines=3, placeholder="Ask something…")
            c["examples"] = gr.Dropdown(
                label="Example prompts for this concept",
                choices=[],
                info="Pick one to fill the prompt box",
            )
            with gr.Row():
                c["run"] = gr.Button("Generate", variant="primary")
                c["stop"] = gr.Button("Stop", variant="secondary", size="sm")
        with gr.Column(scale=2):
            c["concept"] = gr.Dropdown(
                concepts, value=concepts[0], label="Concept (positive vs negative)"
            )
            c["one_step"] = gr.Dropdown(
                list(oc.ONE_STEP_METHODS), value="caa", label="One-step method"
            )
            c["strength"] = gr.Slider(
                0.0,
                1.0,
                oc.DEFAULT_STRENGTH,
                step=0.01,
                label="Strength (fraction of the median activation norm)",
            )
            with gr.Row():
                c["target_mode"] = gr.Checkbox(
                    value=False,
                    label="Steer ODESteer to a confidence",
                    info="each token moves only until p(positive) reaches the target; "
                    "the one-step arm keeps the strength",
                )
                c["target"] = gr.Slider(
                    0.5, 0.99, 0.9, step=0.01, label="Target confidence p (h = logit p)"
                )
            c["steps"] = gr.Slider(1, MAX_STEPS, 10, step=1, label="ODE steps")
            c["solver"] = gr.Radio(list(oc.SOLVERS), value="euler", label="Solver")
            c["quality"] = gr.Markdown(
                "Barrier quality: shown once the concept is fitted (on Generate).",
                elem_id="barrier-quality",
            )
            # Open from the start: a plot sent while its accordion is closed stays blank when
            # the accordion is opened later (seen in Chromium with this Gradio).
            with gr.Accordion("Barrier reliability diagram", open=True):
                c["reliability"] = gr.Plot(label="Held-out calibration", elem_id="reliability")
    with gr.Accordion("Custom concept", open=True, visible=False) as c["custom_box"]:
        with gr.Row():
            c["pos"] = gr.Textbox(label="Positive examples (one per line, ≥ 8)", lines=6)
            c["neg"] = gr.Textbox(label="Negative examples (one per line, ≥ 8)", lines=6)
        c["upload"] = gr.File(
            label="…or upload JSONL / CSV / TXT (≤ 5 MB)",
            file_types=[".jsonl", ".csv", ".txt"],
            type="filepath",
        )
        c["fit_button"] = gr.Button("Fit custom concept")
        c["fit_status"] = gr.Markdown()
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            c["model_name"] = gr.Dropdown(
                list(dict.fromkeys([lm.name, *(allowed or [])])),
                value=lm.name,
                allow_custom_value=allowed is None,
                label="Model (Hub id or local folder)"
                if allowed is None
                else "Model (this deployment's allow-list)",
            )
            c["load_button"] = gr.Button("Load model")
            c["model_status"] = gr.Markdown(model_line(lm) + ".")
        with gr.Row():
            c["layer"] = gr.Number(
                label=f"Layer (0–{lm.n_layers - 1}; -1 = default)", value=-1, precision=0
            )
            c["max_new_tokens"] = gr.Slider(1, MAX_NEW_TOKENS, 48, step=1, label="Max new tokens")
            c["seed"] = gr.Number(label="Seed", value=0, precision=0)
            c["positions"] = gr.Radio(
                ["last", "from_prompt_end"], value="last", label="Steered positions"
            )
        with gr.Row():
            c["do_sample"] = gr.Checkbox(label="Sample (else greedy)", value=False)
            c["temperature"] = _slider("temperature", 0.7, 0.05, "Temperature")
            c["top_p"] = _slider("top_p", 0.9, 0.05, "Top-p")
            c["top_k"] = _slider("top_k", 0, 1, "Top-k (0 = off)")
            c["repetition_penalty"] = _slider("repetition_penalty", 1.1, 0.05, "Repetition penalty")
        with gr.Row():
            c["sweep_button"] = gr.Button("Sweep layers: which layer separates the concept?")
        with gr.Row():
            c["sweep_table"] = gr.Markdown(elem_id="sweep-table")
            c["sweep_plot"] = gr.Plot(label="Barrier quality per layer", elem_id="sweep-plot")
    c["arm_html"], c["readouts"] = [], []
    with gr.Row(equal_height=True):
        for name, title in ARM_TITLES.items():
            with gr.Column():
                gr.Markdown(f"### {title}")
                empty = arm_html(oc.ArmRecord(name, None, 0.0, 0))
                c["arm_html"].append(gr.HTML(empty, elem_id=f"arm-{name}"))
                c["readouts"].append(gr.Markdown(elem_id=f"readout-{name}"))
    c["status"] = gr.Markdown(elem_id="status")
    _trajectory_section(c)
    return Page(**c)


def _trajectory_section(c: dict[str, Any]) -> None:
    gr.Markdown("### Trajectories")
    with gr.Row():
        c["projection"] = gr.Radio(
            [(PROJECTION_LABELS.get(k, k), k) for k in PROJECTIONS],
            value="plane",
            label="Projection",
        )
        c["zoom"] = gr.Checkbox(value=True, label="Zoom to the path")
        c["token"] = gr.Slider(
            1, 2, 1, step=1, label="Token (1 = first generated)", interactive=False,
            elem_id="token-slider",
        )  # fmt: skip
    with gr.Row():
        c["trajectory"] = gr.Plot(
            label="Activation path over the concept clouds", elem_id="trajectory-plot"
        )
        c["barrier"] = gr.Plot(
            label="Barrier value along the path and per token", elem_id="barrier-plot"
        )
    with gr.Accordion("Export", open=False):
        with gr.Row():
            c["exports"] = {
                k: gr.Button(label)
                for k, label in (
                    ("steerer", "Steerer (safetensors)"),
                    ("comparison", "Comparison (JSON)"),
                    ("html", "Plot (HTML)"),
                    ("png", "Plot (PNG)"),
                )
            }
        c["download"] = gr.File(label="Download")

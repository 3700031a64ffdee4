"""ODESteer Studio: unsteered, one-step and ODESteer generations side by side, with trajectories.

Layout and wiring only; everything else is in ``odesteer_core``. Run ``python app.py`` (model from
``--model`` or ``ODESTEER_MODEL``; ``tiny-random-llama`` runs offline). The comparison is also the
API endpoint ``/compare`` (see the README).
"""

from __future__ import annotations

import argparse
import functools
import gc
import inspect
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

import odesteer_core as oc
from odesteer_core import plots
from odesteer_core.highlight import arm_html, arm_readout, edit_scale
from odesteer_core.projection import PROJECTIONS
from odesteer_core.studio import (
    CUSTOM,
    DEFAULT_MODEL,
    Studio,
    allowed_models,
    concept_choices,
    stream_in_thread,
)
from odesteer_core.trajectory import project_comparison

try:  # Hugging Face ZeroGPU: a GPU is attached only inside functions decorated with spaces.GPU
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:  # anywhere else: a no-op

    def gpu(fn):
        return fn


MAX_PROMPT_CHARS = 8000
STREAM_INTERVAL = 0.1  # seconds between streamed updates (the first and last always go out)
API_STREAM_INTERVAL = 0.25  # API clients poll less eagerly than eyes; fewer messages, less overhead
CONCURRENCY = int(os.environ.get("ODESTEER_CONCURRENCY", "2"))  # generations at once
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
STUDIO: Studio | None = None  # built in main() (or by tests through build_app)


# -- handlers --------------------------------------------------------------------------------
def user_errors(fn):
    """Turn the core's ValueError/TypeError (user errors) into a red message in the UI."""

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), print_exception=False) from err

    @functools.wraps(fn)
    def streaming(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err), print_exception=False) from err

    return streaming if inspect.isgeneratorfunction(fn) else plain


def _studio() -> Studio:
    if STUDIO is None:
        raise gr.Error("The app is still starting; try again in a few seconds.")
    return STUDIO


def _check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise ValueError("The prompt is empty: type a question or instruction.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}. Shorten it."
        )
    return prompt


def _fit(state: dict, concept: str, pos: str, neg: str, upload, layer, progress=None):
    studio = _studio()
    lm = studio.model(state.get("model") or studio.default_model)
    spec = studio.concept(concept, positive_text=pos, negative_text=neg, upload=upload)
    layer = None if layer in (None, "", -1) else int(layer)
    return lm, studio.fit(lm, spec, layer=layer, progress=progress)


@user_errors
def _validate_prompt(prompt: str) -> None:
    """Checked before the queue: a bad prompt shows one message and marks no output as failed."""
    _check_prompt(prompt)


def _model_line(lm: oc.LoadedLM) -> str:
    """Which model runs where: name, depth, device, dtype, and the CPU linear kernel."""
    dtype = str(lm.dtype).removeprefix("torch.")
    kernel = ", oneDNN linear kernels" if lm.onednn_layers else ""
    return f"Loaded: `{lm.name}`, {lm.n_layers} layers on {lm.device.type} ({dtype}{kernel})"


@user_errors
def on_load_model(name: str, state: dict, progress=gr.Progress()):  # noqa: B008
    """Load another model for this user (allow-listed on public deployments); shared, cached."""
    progress(0.1, f"loading {name}")
    lm = _studio().model(name)
    note = " Offline test model: outputs are meaningless." if lm.offline_test_model else ""
    status = f"{_model_line(lm)}; default steering layer {lm.default_layer()}.{note}"
    return status, {**state, "model": lm.name, "comparison": None, "projected": {}}


@user_errors
def on_concept(concept: str):
    """Show the custom-concept box for ``custom``; offer the concept's example prompts."""
    prompts = [] if concept == CUSTOM else list(_studio().concept(concept).prompts[:12])
    return gr.update(visible=concept == CUSTOM), gr.update(choices=prompts, value=None)


@user_errors
def on_fit(state: dict, concept: str, pos: str, neg: str, upload, layer, progress=gr.Progress()):  # noqa: B008
    """Fit the concept now (custom concepts; built-ins fit on the first Generate)."""
    _, fitted = _fit(state, concept, pos, neg, upload, layer, progress=progress)
    t = fitted.timing
    return (
        f"Fitted **{fitted.concept.name}** at layer {fitted.layer}: {len(fitted.pos)} positive and "
        f"{len(fitted.neg)} negative activations ({t.get('extract_s', 0):.1f} s extraction, "
        f"{t.get('fit_odesteer_s', 0):.1f} s ODESteer fit)."
    )


@gpu
@user_errors
def on_generate(
    prompt: str, concept: str, pos: str, neg: str, upload, one_step: str, strength: float,
    steps: int, solver: str, layer, max_new_tokens: int, do_sample: bool, temperature: float,
    top_p: float, top_k: int, repetition_penalty: float, seed: int, positions: str,
    projection: str, zoom: bool, state: dict, progress=gr.Progress(),  # noqa: B008
):  # fmt: skip
    """Stream the three arms; when done, project the paths and draw the plots."""
    prompt = _check_prompt(prompt)
    yield (
        *([gr.skip()] * 6), "Preparing the concept (its first use extracts activations and fits "
        "ODESteer and the projections)…", *([gr.skip()] * 4),
    )  # fmt: skip
    settings = oc.GenerationSettings(
        max_new_tokens=int(max_new_tokens), do_sample=bool(do_sample), temperature=temperature,
        top_p=top_p, top_k=int(top_k), repetition_penalty=repetition_penalty, seed=int(seed),
    )  # fmt: skip
    lm, fitted = _fit(state, concept, pos, neg, upload, layer, progress=progress)
    stream = _comparisons(
        lm, fitted, prompt, STREAM_INTERVAL, strength=float(strength), one_step=one_step,
        steps=int(steps), solver=solver, settings=settings, positions=positions,
    )  # fmt: skip
    comparison = None
    for comparison in stream:
        n = [len(arm.tokens) for arm in comparison.arms]
        scale = edit_scale(comparison.arms)
        yield (
            *[arm_html(a, n=k, scale=scale) for a, k in zip(comparison.arms, n)],
            *[arm_readout(a, n=k) for a, k in zip(comparison.arms, n)],
            _status(comparison),
            gr.skip(), gr.skip(), gr.skip(), gr.skip(),
        )  # fmt: skip
    if comparison is None:
        return
    state = {**state, "fitted": fitted, "comparison": comparison, "projected": {}}
    figures = _figures(state, projection, 1, zoom)
    n_tokens = max(len(comparison.arm("odesteer").tokens), 1)
    yield (
        *([gr.skip()] * 6), _status(comparison), state,
        gr.update(minimum=1, maximum=n_tokens, value=1, interactive=n_tokens > 1), *figures,
    )  # fmt: skip


def _comparisons(lm, fitted, prompt: str, interval: float, **options):
    """``oc.compare`` streamed from its own thread (see ``stream_in_thread``), throttled."""
    return stream_in_thread(
        lambda: oc.compare(lm, fitted, prompt, **options), min_interval=interval
    )


def _status(comparison: oc.Comparison) -> str:
    parts = [f"⚠️ {n}" for n in comparison.notices]
    timing = comparison.timing
    if "tokens" in timing:
        rate = timing["tokens"] / max(timing["generate_s"], 1e-9)
        parts.append(
            f"{timing['tokens']} tokens per arm, {rate:.1f} tokens/s, first token after "
            f"{timing.get('first_token_s', 0):.2f} s · layer {comparison.layer}"
        )
    return "  \n".join(parts)


def _projected(state: dict, projection: str) -> oc.ProjectedComparison:
    """The comparison's paths under ``projection``, projected once per comparison."""
    projected = state["projected"].get(projection)
    if projected is None:
        fitted = state["fitted"]
        projector = _studio().projector(fitted, projection)
        projected = state["projected"][projection] = project_comparison(
            projector, state["comparison"], fitted
        )
    return projected


def _token_index(token: int) -> int:
    """The 0-based index of the slider's 1-based token number."""
    return max(int(token), 1) - 1


def _figures(state: dict, projection: str, token: int, zoom: bool = False):
    """Trajectory and barrier figures for token ``token`` (1-based, as on the slider)."""
    if state.get("comparison") is None:
        return gr.skip(), gr.skip()
    projected, index = _projected(state, projection), _token_index(token)
    return (
        plots.trajectory_figure(projected, index, zoom=bool(zoom)),
        plots.barrier_figure(projected, index),
    )


@user_errors
def on_token(token: int, projection: str, zoom: bool, state: dict):
    """Replot for another token: indexing into precomputed paths, no refit, no transform."""
    return _figures(state, projection, token, zoom)


@user_errors
def on_projection(token: int, projection: str, zoom: bool, state: dict):
    """Switch projection: project every path once (cached in the user's state), then replot."""
    return (*_figures(state, projection, token, zoom), state)


@user_errors
def on_export(state: dict, projection: str, token: int, zoom: bool, *, what: str) -> str:
    """Write the fitted steerer, the comparison or the plots to a file for download."""
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
    else:
        projected = _projected(state, projection)
        figure = plots.trajectory_figure(projected, _token_index(token), zoom=bool(zoom))
        path = folder / f"trajectory.{what}"
        if what == "html":
            path.write_text(plots.figure_to_html(figure))
        else:
            try:
                path.write_bytes(plots.figure_to_png(figure))
            except plots.ExportUnavailableError as err:
                raise gr.Error(str(err), print_exception=False) from err
    return str(path)


# -- API -------------------------------------------------------------------------------------
@gpu
@user_errors
def api_compare(
    prompt: str,
    concept: str = "polite",
    strength: float = oc.DEFAULT_STRENGTH,
    steps: int = 10,
    one_step_method: str = "caa",
    max_new_tokens: int = 48,
    seed: int = 0,
    projection: str = "pca",
) -> Iterator[dict]:
    """Unsteered, one-step and ODESteer generations for one prompt, streamed, then trajectories.

    Yields ``{"texts": {"none", "one_step", "odesteer"}, "done": False}`` as tokens arrive, and
    last ``{"texts", "done": True, "comparison": tokens and per-token barrier values of every
    arm, settings and timing, "trajectories": per-token 2-D ODESteer paths, one-step endpoints
    and the barrier along each path in the chosen projection}``. ``Client.predict`` returns
    the last one.
    """
    _check_prompt(prompt)
    lm, fitted = _fit({}, concept, "", "", None, None)
    settings = oc.GenerationSettings(max_new_tokens=int(max_new_tokens), seed=int(seed))
    stream = _comparisons(
        lm, fitted, prompt, API_STREAM_INTERVAL, strength=float(strength), steps=int(steps),
        one_step=one_step_method, settings=settings,
    )  # fmt: skip
    comparison = None
    for comparison in stream:
        if not comparison.done:
            yield {"texts": {arm.name: arm.text for arm in comparison.arms}, "done": False}
    projected = project_comparison(_studio().projector(fitted, projection), comparison, fitted)
    yield {
        "texts": {arm.name: arm.text for arm in comparison.arms},
        "done": True,
        "comparison": comparison.to_dict(),
        "trajectories": projected.to_dict(),
    }


# -- layout ----------------------------------------------------------------------------------
def build_app(studio: Studio) -> gr.Blocks:
    """The Blocks app around a ready ``Studio`` (the model is loaded once, before this)."""
    global STUDIO
    STUDIO = studio
    lm = studio.model(studio.default_model)
    concepts = concept_choices()
    first = concepts[0]
    with gr.Blocks(title="ODESteer Studio") as demo:
        state = gr.State({})
        gr.Markdown(
            "# ODESteer Studio\nOne prompt, three generations in one batch: **unsteered**, "
            "**one-step** steering (activation addition), and **ODESteer** (an ODE flow along the "
            "gradient of a barrier fitted on positive vs negative activations). Tokens are tinted "
            f"by how far steering moved their activation. Model: `{lm.name}`, steering layer "
            f"{lm.default_layer()} of {lm.n_layers} by default."
        )
        if lm.offline_test_model:
            gr.Markdown(
                "⚠️ **Offline test model** (`tiny-random-llama`): random weights, so every output "
                "below is meaningless. It exercises the whole pipeline without network."
            )
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=3, placeholder="Ask something…")
                examples = gr.Dropdown(
                    label="Example prompts for this concept",
                    choices=[],
                    info="Pick one to fill the prompt box",
                )
                with gr.Row():
                    run = gr.Button("Generate", variant="primary")
                    stop = gr.Button("Stop", variant="secondary", size="sm")
            with gr.Column(scale=2):
                concept = gr.Dropdown(concepts, value=first, label="Concept (positive vs negative)")
                one_step = gr.Dropdown(
                    list(oc.ONE_STEP_METHODS), value="caa", label="One-step method"
                )
                strength = gr.Slider(
                    0.0,
                    1.0,
                    oc.DEFAULT_STRENGTH,
                    step=0.01,
                    label="Strength (fraction of the median activation norm)",
                )
                steps = gr.Slider(1, 50, 10, step=1, label="ODE steps")
                solver = gr.Radio(list(oc.SOLVERS), value="euler", label="Solver")
        with gr.Accordion("Custom concept", open=True, visible=False) as custom_box:
            with gr.Row():
                pos = gr.Textbox(label="Positive examples (one per line, ≥ 8)", lines=6)
                neg = gr.Textbox(label="Negative examples (one per line, ≥ 8)", lines=6)
            upload = gr.File(
                label="…or upload JSONL / CSV / TXT (≤ 5 MB)",
                file_types=[".jsonl", ".csv", ".txt"],
                type="filepath",
            )
            fit_button = gr.Button("Fit custom concept")
            fit_status = gr.Markdown()
        with gr.Accordion("Advanced", open=False):
            allowed = allowed_models()
            with gr.Row():
                model_name = gr.Dropdown(
                    list(dict.fromkeys([lm.name, *(allowed or [])])),
                    value=lm.name,
                    allow_custom_value=allowed is None,
                    label="Model (Hub id or local folder)"
                    if allowed is None
                    else "Model (this deployment's allow-list)",
                )
                load_button = gr.Button("Load model")
                model_status = gr.Markdown(_model_line(lm) + ".")
            with gr.Row():
                layer = gr.Number(
                    label=f"Layer (0–{lm.n_layers - 1}; -1 = default)", value=-1, precision=0
                )
                max_new_tokens = gr.Slider(1, 256, 48, step=1, label="Max new tokens")
                seed = gr.Number(label="Seed", value=0, precision=0)
                positions = gr.Radio(
                    ["last", "from_prompt_end"], value="last", label="Steered positions"
                )
            with gr.Row():
                do_sample = gr.Checkbox(label="Sample (else greedy)", value=False)
                temperature = gr.Slider(0.05, 2.0, 0.7, step=0.05, label="Temperature")
                top_p = gr.Slider(0.05, 1.0, 0.9, step=0.05, label="Top-p")
                top_k = gr.Slider(0, 200, 0, step=1, label="Top-k (0 = off)")
                repetition_penalty = gr.Slider(1.0, 2.0, 1.1, step=0.05, label="Repetition penalty")
        htmls, readouts = [], []
        with gr.Row(equal_height=True):
            for name, title in ARM_TITLES.items():
                with gr.Column():
                    gr.Markdown(f"### {title}")
                    htmls.append(
                        gr.HTML(arm_html(oc.ArmRecord(name, None, 0.0, 0)), elem_id=f"arm-{name}")
                    )
                    readouts.append(gr.Markdown(elem_id=f"readout-{name}"))
        status = gr.Markdown(elem_id="status")
        gr.Markdown("### Trajectories")
        with gr.Row():
            projection = gr.Radio(
                [(PROJECTION_LABELS.get(k, k), k) for k in PROJECTIONS],
                value="plane",
                label="Projection",
            )
            zoom = gr.Checkbox(value=True, label="Zoom to the path")
            token = gr.Slider(
                1, 2, 1, step=1, label="Token (1 = first generated)", interactive=False,
                elem_id="token-slider",
            )  # fmt: skip
        with gr.Row():
            trajectory_plot = gr.Plot(
                label="Activation path over the concept clouds", elem_id="trajectory-plot"
            )
            barrier_plot = gr.Plot(
                label="Barrier value along the path and per token", elem_id="barrier-plot"
            )
        with gr.Accordion("Export", open=False):
            with gr.Row():
                buttons = {
                    k: gr.Button(label)
                    for k, label in (
                        ("steerer", "Steerer (safetensors)"),
                        ("comparison", "Comparison (JSON)"),
                        ("html", "Plot (HTML)"),
                        ("png", "Plot (PNG)"),
                    )
                }
            download = gr.File(label="Download")

        concept.change(on_concept, concept, [custom_box, examples], api_visibility="private")
        examples.change(lambda p: p or gr.skip(), examples, prompt, api_visibility="private")
        demo.load(on_concept, concept, [custom_box, examples], api_visibility="private")
        load_button.click(
            on_load_model,
            [model_name, state],
            [model_status, state],
            api_visibility="private",
            concurrency_id="generate",
        )
        fit_button.click(
            on_fit, [state, concept, pos, neg, upload, layer], fit_status, api_visibility="private"
        )
        inputs = [
            prompt,
            concept,
            pos,
            neg,
            upload,
            one_step,
            strength,
            steps,
            solver,
            layer,
            max_new_tokens,
            do_sample,
            temperature,
            top_p,
            top_k,
            repetition_penalty,
            seed,
            positions,
            projection,
            zoom,
            state,
        ]
        outputs = [*htmls, *readouts, status, state, token, trajectory_plot, barrier_plot]
        events = [
            trigger(_validate_prompt, prompt, None, api_visibility="private").success(
                on_generate,
                inputs,
                outputs,
                api_visibility="private",
                concurrency_id="generate",
                concurrency_limit=CONCURRENCY,
                trigger_mode="once",
            )
            for trigger in (run.click, prompt.submit)
        ]
        stop.click(None, cancels=events, api_visibility="private")
        gr.on(
            [token.input, zoom.input],
            on_token,
            [token, projection, zoom, state],
            [trajectory_plot, barrier_plot],
            api_visibility="private",
            show_progress="hidden",
            trigger_mode="always_last",
        )
        projection.change(
            on_projection,
            [token, projection, zoom, state],
            [trajectory_plot, barrier_plot, state],
            api_visibility="private",
        )
        for what, button in buttons.items():
            button.click(
                functools.partial(on_export, what=what),
                [state, projection, token, zoom],
                download,
                api_visibility="private",
            )
        gr.api(
            api_compare,
            api_name="compare",
            concurrency_id="generate",
            concurrency_limit=CONCURRENCY,
        )
    # The model, Gradio and plotly leave ~10^6 long-lived objects; without this every full GC
    # pass walks them all (measured: ~0.5 s pauses in token-slider replots every few dozen).
    gc.collect()
    gc.freeze()
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description="ODESteer Studio")
    parser.add_argument("--model", default=os.environ.get("ODESTEER_MODEL", DEFAULT_MODEL))
    parser.add_argument("--truthfulqa-csv", default=os.environ.get("ODESTEER_TRUTHFULQA_CSV"))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("ODESTEER_SMOKE") == "1",
        help="start, call /compare once through gradio_client, stop (CI sets ODESTEER_SMOKE=1)",
    )
    args = parser.parse_args()
    try:
        studio = Studio(args.model, truthfulqa_csv=args.truthfulqa_csv)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    demo = build_app(studio)
    studio.warm_up(concept_choices()[0])  # fit the first concept while the page loads
    demo.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=args.host, server_port=args.port, css=CSS, prevent_thread_lock=args.smoke
    )
    if args.smoke:
        from gradio_client import Client

        result = Client(demo.local_url, verbose=False).predict(
            "How do I ask for a raise?", concept_choices()[0], api_name="/compare"
        )
        demo.close()
        arms = result["texts"]
        print(f"smoke: /compare returned {len(arms)} arms: {sorted(arms)}", flush=True)
        if sorted(arms) != ["none", "odesteer", "one_step"] or not result["done"]:
            raise SystemExit("error: /compare did not return the three arms")


if __name__ == "__main__":
    main()

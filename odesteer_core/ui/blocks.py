"""``build_app``: the Blocks app around a ready ``Studio``: the page, its events and ``/compare``.

Events read the form as one dict (Gradio's set-of-inputs form) and write ``PageUpdate``s as
``{component: value}`` dicts; the handlers themselves (``handlers.py``) know nothing of
components. Generation runs inside ``gpu`` (``spaces.GPU`` on ZeroGPU, a no-op elsewhere).
"""

from __future__ import annotations

import functools
import gc
import os

import gradio as gr

from odesteer_core.studio import Studio, allowed_models, concept_choices
from odesteer_core.ui import api, handlers
from odesteer_core.ui.errors import user_errors
from odesteer_core.ui.page import Page, build_page

__all__ = ["build_app", "concurrency", "gpu"]

try:  # Hugging Face ZeroGPU: a GPU is attached only inside functions decorated with spaces.GPU
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:  # anywhere else: a no-op

    def gpu(fn):
        return fn


def concurrency() -> int:
    """Generations running at once: ``ODESTEER_CONCURRENCY`` (default 2), checked."""
    raw = os.environ.get("ODESTEER_CONCURRENCY", "2").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"ODESTEER_CONCURRENCY must be a whole number from 1 to 64, got {raw!r}")
    return int(raw)


def build_app(studio: Studio) -> gr.Blocks:
    """The Blocks app around a ready ``Studio`` (the model is loaded once, before this)."""
    handlers.bind_studio(studio)
    lm = studio.model(studio.default_model)
    limit = concurrency()
    with gr.Blocks(title="ODESteer Studio") as demo:
        page = build_page(lm, concept_choices(), allowed_models())
        _wire_concept(demo, page)
        _wire_generation(page, limit)
        _wire_views(page)
        gr.api(
            gpu(user_errors(api.compare)),
            api_name="compare",
            concurrency_id="generate",
            concurrency_limit=limit,
        )
    # The model, Gradio and plotly leave ~10^6 long-lived objects; without this every full GC
    # pass walks them all (measured: ~0.5 s pauses in token-slider replots every few dozen).
    gc.collect()
    gc.freeze()
    return demo


def _wire_concept(demo: gr.Blocks, page: Page) -> None:
    @user_errors
    def on_concept(concept: str):
        custom = concept == "custom"
        prompts = handlers.concept_prompts(concept)
        return gr.update(visible=custom), gr.update(choices=prompts, value=None)

    @user_errors
    def on_fit(data: dict):
        form = page.form_values(data)
        _, fitted = handlers.fit_concept(form, data[page.state])
        return {
            page.fit_status: handlers.fit_message(fitted),
            **page.updates(handlers.quality(fitted)),
        }

    @user_errors
    def on_load_model(name: str, state: dict):
        return handlers.load_model(name, state)

    private = {"api_visibility": "private"}
    page.concept.change(on_concept, page.concept, [page.custom_box, page.examples], **private)
    demo.load(on_concept, page.concept, [page.custom_box, page.examples], **private)
    page.examples.change(lambda p: p or gr.skip(), page.examples, page.prompt, **private)

    @user_errors
    def on_sweep(data: dict):
        return page.updates(handlers.sweep(page.form_values(data), data[page.state]))

    page.sweep_button.click(
        on_sweep,
        page.form_inputs(),
        [page.sweep_table, page.sweep_plot],
        concurrency_id="generate",
        **private,
    )
    fit_outputs = [page.fit_status, page.quality, page.reliability]
    page.fit_button.click(on_fit, page.form_inputs(), fit_outputs, **private)
    page.load_button.click(
        on_load_model,
        [page.model_name, page.state],
        [page.model_status, page.state],
        concurrency_id="generate",
        **private,
    )


def _wire_generation(page: Page, limit: int) -> None:
    @user_errors
    def check_prompt(prompt: str) -> None:
        """Checked before the queue: a bad prompt shows one message, no output marked failed."""
        handlers.request_of({"prompt": prompt})

    @gpu
    @user_errors
    def on_generate(data: dict, progress=gr.Progress()):  # noqa: B008
        form = page.form_values(data)
        for update in handlers.generate(form, data[page.state], progress=progress):
            yield page.updates(update)

    events = [
        trigger(check_prompt, page.prompt, None, api_visibility="private").success(
            on_generate,
            page.form_inputs(),
            page.outputs(),
            api_visibility="private",
            concurrency_id="generate",
            concurrency_limit=limit,
            trigger_mode="once",
        )
        for trigger in (page.run.click, page.prompt.submit)
    ]
    page.stop.click(None, cancels=events, api_visibility="private")


def _wire_views(page: Page) -> None:
    view_inputs = [page.state, page.projection, page.token, page.zoom]

    @user_errors
    def on_view(state: dict, projection: str, token: int, zoom: bool):
        return page.updates(handlers.replot(state, projection, token, zoom))

    @user_errors
    def on_export(state: dict, projection: str, token: int, zoom: bool, *, what: str) -> str:
        return handlers.export(state, projection, token, zoom, what)

    views = [page.state, page.trajectory, page.barrier]
    gr.on(
        [page.token.input, page.zoom.input],
        on_view,
        view_inputs,
        views,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    page.projection.change(on_view, view_inputs, views, api_visibility="private")
    for what, button in page.exports.items():
        button.click(
            functools.partial(on_export, what=what),
            view_inputs,
            page.download,
            api_visibility="private",
        )

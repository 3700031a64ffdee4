"""The Gradio app on the offline model: Blocks build, handlers, exports, bad input, the API.

Handlers are called directly (as Gradio calls them); the API test launches the app and calls
``/compare`` through ``gradio_client``, several clients at once.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import gradio as gr
import huggingface_hub
import plotly.graph_objects as go
import pytest
import torch

import odesteer_core as oc
from odesteer_core.studio import Studio
from odesteer_core.ui import build_app, concurrency, handlers
from odesteer_core.ui.api import compare as api_compare
from odesteer_core.ui.errors import user_errors

PROMPT = "How should I answer an angry email?"
POSITIVE = [f"Thank you kindly for your patience, friend number {i}." for i in range(10)]
NEGATIVE = [f"Go away, you useless pest number {i}." for i in range(10)]
GENERATE_DEFAULTS = dict(
    pos="", neg="", upload=None, one_step="caa", strength=0.3, target_mode=False, target=0.9,
    steps=10, solver="euler",
    layer=-1, max_new_tokens=6, do_sample=False, temperature=0.7, top_p=0.9, top_k=0,
    repetition_penalty=1.0, seed=0, positions="last", projection="pca", zoom=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    studio = Studio(
        oc.TINY_RANDOM_LLAMA,
        cache_dir=str(tmp_path_factory.mktemp("acts")),
        warm_projections=("pca",),
    )
    build_app(studio)
    return studio


def generate(prompt=PROMPT, concept="polite", state=None, **kw):
    """The Generate button's handler, as the page calls it: one form dict and the state."""
    form = {**GENERATE_DEFAULTS, **kw, "prompt": prompt, "concept": concept}
    stream = user_errors(handlers.generate)(form, state if state is not None else {})
    return list(stream)


def final_state(updates):
    return updates[-1].state


def test_blocks_build_without_launching(studio):
    demo = build_app(studio)
    assert isinstance(demo, gr.Blocks)
    api = demo.get_api_info()
    assert "/compare" in api["named_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/compare"]["parameters"]]
    assert params[:7] == [
        "prompt", "concept", "strength", "steps", "one_step_method", "max_new_tokens", "seed"
    ]  # fmt: skip


def test_generate_streams_three_arms_then_plots(studio):
    updates = generate()
    assert len(updates) >= 2  # at least one streamed token, then the final plots
    last = updates[-1]
    status, state, token = last.status, last.state, last.token_slider
    traj, barrier = last.trajectory, last.barrier
    final = state["comparison"]
    assert [a.name for a in final.arms] == ["none", "one_step", "odesteer"]
    assert all(len(a.tokens) == 6 for a in final.arms)
    assert "meaningless" in status  # the offline model says so
    assert isinstance(traj, go.Figure) and isinstance(barrier, go.Figure)
    assert token["minimum"] == 1 and token["maximum"] == 6
    streamed_html = updates[-2].arm_html
    assert all("<span" in h for h in streamed_html)


def test_target_mode_checkbox_steers_odesteer_to_the_slider_confidence(studio):
    updates = generate(target_mode=True, target=0.75)
    final = updates[-1].state["comparison"]
    ode, one = final.arm("odesteer"), final.arm("one_step")
    assert ode.target == 0.75 and ode.steps == 0 and one.target is None and one.steps == 1
    readouts = updates[-1].readouts or next(u.readouts for u in reversed(updates) if u.readouts)
    assert "to confidence 0.75" in readouts[2] and "moved" in readouts[2]
    assert "one step" in readouts[1] and readouts[0].startswith("no edit")
    off = generate(target_mode=False, target=0.75)[-1].state["comparison"].arm("odesteer")
    assert off.target is None and off.steps == 10  # the slider alone changes nothing


def test_generate_shows_the_barriers_held_out_quality_first(studio):
    updates = generate()
    first = next(u for u in updates if u.quality is not None)
    assert updates.index(first) < next(i for i, u in enumerate(updates) if u.arm_html)
    fitted = updates[-1].state["fitted"]
    report = fitted.odesteer.report_
    assert f"layer {fitted.layer}" in first.quality and f"{report.accuracy:.2f}" in first.quality
    # random weights: the tiny model's concept barely separates, and the page says so
    assert first.quality.startswith("⚠️") == bool(report.warning)
    curve = next(t for t in first.reliability.data if t.name == "barrier (held-out)")
    counts = next(t for t in first.reliability.data if t.type == "bar")
    assert sum(counts.y) == report.n_rows and len(curve.x) == sum(n > 0 for n in report.bin_count)


def test_layer_sweep_handler_tables_every_layer_of_the_small_model(studio):
    update = handlers.sweep({"concept": "polite"}, {})
    lm = studio.model(oc.TINY_RANDOM_LLAMA)
    rows = [line for line in update.sweep_table.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == lm.n_layers  # a small model: every layer
    assert "Best layer" in update.sweep_table
    accuracy = next(t for t in update.sweep_plot.data if t.name == "held-out accuracy")
    assert list(accuracy.x) == list(range(lm.n_layers))
    assert handlers.sweep({"concept": "polite"}, {}).sweep_table == update.sweep_table  # cached


def test_unsteered_column_equals_plain_generate(studio):
    state = final_state(generate())
    lm = studio.model(oc.TINY_RANDOM_LLAMA)
    ids = lm.tokenizer(oc.format_prompt(lm, PROMPT), return_tensors="pt")
    plain = lm.model.generate(**ids, max_new_tokens=6, do_sample=False)
    expected = plain[0, ids["input_ids"].shape[1] :].tolist()
    assert state["comparison"].arm("none").token_ids == expected


def test_token_slider_replots_without_refit(studio):
    state = final_state(generate())
    projected = dict(state["projected"])
    update = handlers.replot(state, "pca", 3, True)
    traj, barrier = update.trajectory, update.barrier
    assert state["projected"] == projected  # nothing recomputed
    assert traj is not None and barrier is not None


def test_projection_switch_caches_in_state(studio):
    state = final_state(generate())
    new_state = handlers.replot(state, "plane", 1, False).state
    assert "plane" in new_state["projected"]


@pytest.mark.parametrize("what", ["steerer", "comparison", "html", "png"])
def test_exports(studio, what):
    state = final_state(generate())
    try:
        path = user_errors(handlers.export)(state, "pca", 1, True, what)
    except gr.Error as err:  # PNG needs kaleido's Chromium: skip where it is missing, say why
        if what == "png" and "PNG" in str(err):
            pytest.skip(f"PNG export unavailable on this machine: {err}")
        raise
    if what == "steerer":
        loaded = oc.load_steerer(path)
        x = state["fitted"].pos[:2]
        torch.testing.assert_close(loaded.steer(x, 1.0), state["fitted"].odesteer.steer(x, 1.0))
    elif what == "comparison":
        data = json.loads(Path(path).read_text())
        assert [a["name"] for a in data["arms"]] == ["none", "one_step", "odesteer"]
        assert len(data["arms"][2]["paths"][0]) == 11  # steps + 1 points
    elif what == "html":
        assert "plotly" in Path(path).read_text()
    else:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_before_generating_is_a_clear_error(studio):
    with pytest.raises(gr.Error, match="generate a comparison first"):
        user_errors(handlers.export)({}, "pca", 1, False, "comparison")


def test_custom_concept_fits_from_pasted_lines(studio):
    form = {"concept": "custom", "pos": "\n".join(POSITIVE), "neg": "\n".join(NEGATIVE)}
    message = handlers.fit_message(handlers.fit_concept({**form, "layer": -1}, {})[1])
    assert "Fitted" in message and "10 positive" in message


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "prompt is empty"), ("   \n", "prompt is empty"), ("x" * 9000, "limit is 8000")],
)
def test_bad_prompts(studio, prompt, message):
    with pytest.raises(gr.Error, match=message):
        generate(prompt)


def test_custom_concept_with_too_few_lines(studio):
    with pytest.raises(gr.Error, match="at least 8"):
        generate(concept="custom", pos="nice\nkind", neg="rude\nmean")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary", "binary"),
        ("caf\u00e9".encode("latin-1") + b"\n", "not valid UTF-8"),
        (b"a" * (5 * 1024 * 1024 + 1), "over the 5 MB limit"),
    ],
)
def test_bad_uploads(studio, tmp_path, content, message):
    path = tmp_path / "concept.txt"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        generate(concept="custom", upload=str(path))


def test_disallowed_model_on_a_public_deployment(studio, monkeypatch):
    monkeypatch.setenv("ODESTEER_PUBLIC", "1")
    monkeypatch.delenv("ODESTEER_ALLOWED_MODELS", raising=False)
    with pytest.raises(ValueError, match="only loads these models"):
        studio.model("someone/remote-code-model")


def test_unknown_model_is_a_clear_error(studio, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no Hub retries
    with pytest.raises(ValueError, match="tiny-random-llama"):
        studio.model("no-such-org/no-such-model")


def test_closing_the_stream_midway_leaves_no_hook(studio):
    lm = studio.model(oc.TINY_RANDOM_LLAMA)
    before = oc.active_hooks(lm.model)
    form = {**GENERATE_DEFAULTS, "prompt": PROMPT, "concept": "polite", "max_new_tokens": 40}
    stream = handlers.generate(form, {})
    next(stream)
    stream.close()  # what Gradio does when the tab closes or Stop is clicked
    for _ in range(200):
        if oc.active_hooks(lm.model) == before:
            break
        threading.Event().wait(0.05)  # the worker thread stops at its next token
    assert oc.active_hooks(lm.model) == before


def test_concurrent_generations_on_the_shared_model_stay_separate(studio):
    # Two users at once, on two threads of the same shared model: each result equals its
    # sequential run (the steering hook of one never touches the other's forward passes).
    settings = [dict(strength=0.0), dict(strength=0.8, seed=1)]
    alone = [final_state(generate(**kw))["comparison"] for kw in settings]
    results = [None, None]

    def run(i):
        results[i] = final_state(generate(**settings[i]))["comparison"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for solo, both in zip(alone, results):
        for a, b in zip(solo.arms, both.arms):
            assert a.token_ids == b.token_ids
            assert a.barrier_after == pytest.approx(b.barrier_after, abs=1e-4)


@pytest.fixture(scope="module")
def server(studio):
    demo = build_app(studio).queue(default_concurrency_limit=concurrency())
    demo.launch(prevent_thread_lock=True, server_port=None, quiet=True)
    yield demo.local_url
    demo.close()


def test_compare_endpoint_through_gradio_client(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    result = client.predict(PROMPT, "polite", 0.3, 10, "caa", 5, 0, api_name="/compare")
    assert set(result["texts"]) == {"none", "one_step", "odesteer"}
    *_, direct = api_compare(PROMPT, "polite", 0.3, 10, "caa", 5, 0)
    assert result["texts"] == direct["texts"]
    assert len(result["trajectories"]["paths"]) == 5
    assert len(result["trajectories"]["paths"][0]) == 11  # steps + 1 points, 2-D


def test_api_target_mode_steers_odesteer_to_the_confidence(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    args = (PROMPT, "polite", 0.3, 10, "caa", 4, 0, "pca", 0.8)
    result = client.predict(*args, api_name="/compare")
    ode = result["comparison"]["arms"][2]
    assert ode["target"] == 0.8 and result["comparison"]["settings"]["target"] == 0.8
    assert result["comparison"]["arms"][1]["target"] is None  # one-step keeps its strength
    level = 1.3862943611198906  # logit(0.8)
    for before, after in zip(ode["barrier_before"], ode["barrier"]):
        # already there: untouched; else on the level, or short of it at the horizon (the tiny
        # random model's barrier may not reach 0.8 within half a turn) but higher than before
        assert after == before if before >= level else after < level + 2e-2 and after > before
    with pytest.raises(Exception, match="strictly between 0 and 1"):
        client.predict(*args[:-1], 1.0, api_name="/compare")


def test_several_clients_at_once_get_their_own_results(server):
    from gradio_client import Client

    jobs = [(f"{PROMPT} {i}", 0.1 * i, i) for i in range(3)]
    expected = [
        list(api_compare(p, "polite", s, 10, "caa", 4, seed))[-1]["texts"] for p, s, seed in jobs
    ]
    clients = [Client(server, verbose=False) for _ in jobs]
    futures = [
        c.submit(p, "polite", s, 10, "caa", 4, seed, api_name="/compare")
        for c, (p, s, seed) in zip(clients, jobs)
    ]
    assert [f.result(timeout=120)["texts"] for f in futures] == expected


def test_api_bad_input_is_a_clear_error(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    with pytest.raises(Exception, match="prompt is empty"):
        client.predict("  ", "polite", 0.3, 10, "caa", 5, 0, api_name="/compare")
    with pytest.raises(Exception, match="Unknown concept"):
        client.predict(PROMPT, "no-such-concept", 0.3, 10, "caa", 5, 0, api_name="/compare")


def test_load_model_handler_switches_this_users_model(studio):
    status, state = handlers.load_model(oc.TINY_RANDOM_LLAMA, {})
    assert "meaningless" in status and state["model"] == oc.TINY_RANDOM_LLAMA


def test_load_model_handler_reports_unknown_models(studio, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no Hub retries
    with pytest.raises(gr.Error, match="tiny-random-llama"):
        user_errors(handlers.load_model)("no-such-org/no-such-model", {})

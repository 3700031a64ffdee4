"""Streams on the shared model: nothing of theirs outlives a forward call, and they stop at once.

A paused stream (its consumer stopped iterating and never closed it), or one garbage-collected
unclosed, must leave no hook, no switched ``forward`` and no inference mode behind: a plain
``model.generate`` in the same thread works and gives what it gives on a fresh model. A cancelled
stream stops inside the forward pass in progress, yields no further token, frees its KV cache and
leaves the model clean.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import pytest
import torch
from tiny_models import POLITE, RUDE

import odesteer_core as oc
from odesteer_core.lm.generate import Arm, generate_arms
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.pipeline import Steering, compare
from odesteer_core.studio.streaming import stream_in_thread

PROMPT = "What should I say to a colleague who missed the deadline?"
POSITIVE, NEGATIVE = POLITE, RUDE
TOKENS = GenerationSettings(max_new_tokens=12)


pytestmark = pytest.mark.usefixtures("one_thread")


def _plain_generate(lm) -> list[int]:
    enc = lm.tokenizer(oc.format_prompt(lm, PROMPT), return_tensors="pt", add_special_tokens=False)
    out = lm.model.generate(
        **enc, max_new_tokens=8, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id
    )
    return out[0].tolist()


def _assert_clean(lm, hooks_before: int) -> None:
    """No hook of ours, no switched ``forward`` on any module, grad mode as the test left it."""
    assert oc.active_hooks(lm.model) == hooks_before
    switched = [name for name, m in lm.model.named_modules() if "forward" in vars(m)]
    assert switched == []
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


KINDS = ("compare", "generate_arms")


def _stream(kind: str, lm, fitted) -> Iterator[oc.Comparison]:
    if kind == "compare":
        return compare(lm, fitted, PROMPT, Steering(strength=1.0), TOKENS)
    arms = [Arm("none"), Arm("odesteer", fitted.odesteer, 1.0)]
    return generate_arms(
        lm, PROMPT, arms, layer=fitted.layer, judge=fitted.odesteer, settings=TOKENS
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_paused_stream_leaves_the_model_clean_for_a_plain_generate(lm, fitted, kind):
    fresh = _plain_generate(lm)
    *_, uninterrupted = _stream(kind, lm, fitted)
    before = oc.active_hooks(lm.model)
    stream = _stream(kind, lm, fitted)
    first = next(stream)  # the consumer stops here and does not close the stream
    assert len(first.arms[0].token_ids) == 1 and not first.done
    _assert_clean(lm, before)
    assert _plain_generate(lm) == fresh  # it used to raise IndexError here
    *_, last = stream  # the paused stream resumes unharmed
    for arm, alone in zip(last.arms, uninterrupted.arms):
        assert arm.token_ids == alone.token_ids and arm.barrier_after == alone.barrier_after
    _assert_clean(lm, before)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unclosed_stream_garbage_collected_leaves_the_model_clean(lm, fitted, kind):
    fresh = _plain_generate(lm)
    before = oc.active_hooks(lm.model)
    stream = _stream(kind, lm, fitted)
    next(stream)
    gone = weakref.ref(stream)
    del stream
    gc.collect()
    assert gone() is None
    _assert_clean(lm, before)
    assert _plain_generate(lm) == fresh


def _stopped(comparison) -> bool:
    return comparison.done and any("stopped" in notice for notice in comparison.notices)


def test_a_cancel_set_from_another_thread_ends_the_stream_with_no_further_token(lm, fitted):
    before = oc.active_hooks(lm.model)
    cancel = threading.Event()
    settings = GenerationSettings(max_new_tokens=40)
    stream = compare(lm, fitted, PROMPT, Steering(strength=1.0), settings, cancel=cancel)
    next(stream)
    seen = [len(arm.token_ids) for arm in next(stream).arms]
    setter = threading.Thread(target=cancel.set)
    setter.start()
    setter.join()
    last = next(stream)
    assert _stopped(last) and [len(arm.token_ids) for arm in last.arms] == seen == [2, 2, 2]
    assert "after 2 token" in last.notices[-1]
    with pytest.raises(StopIteration):
        next(stream)
    _assert_clean(lm, before)


class _Slow:
    """Hooks that make every decoder layer of the tiny model take ``seconds`` before and after:
    a model whose one forward pass takes seconds, like a large model on a CPU."""

    def __init__(self, lm, seconds: float):
        self.handles = []
        for layer in lm.layers:
            self.handles.append(layer.register_forward_pre_hook(lambda m, a: time.sleep(seconds)))
            self.handles.append(layer.register_forward_hook(lambda m, a, o: time.sleep(seconds)))
        self.forward_s = 2 * seconds * len(lm.layers)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_cancelling_stops_within_the_forward_pass_of_a_slow_model(lm, fitted):
    slow = _Slow(lm, 0.25)  # one forward pass: 1.5 s
    try:
        before = oc.active_hooks(lm.model)
        cancel, first = threading.Event(), threading.Event()
        items, ended = [], []

        def consume() -> None:
            stream = compare(lm, fitted, PROMPT, Steering(strength=1.0), TOKENS, cancel=cancel)
            for comparison in stream:
                items.append([len(arm.token_ids) for arm in comparison.arms])
                first.set()
            ended.append(time.monotonic())

        worker = threading.Thread(target=consume)
        worker.start()
        assert first.wait(30)  # the prefill is done, the first decoding step is running
        time.sleep(0.2)
        cancelled = time.monotonic()
        cancel.set()
        worker.join(30)
        assert not worker.is_alive() and ended[0] - cancelled < 1.0 < slow.forward_s
        assert items == [[1, 1, 1], [1, 1, 1]]  # the last: the same tokens, stopped
        _assert_clean(lm, before)
    finally:
        slow.remove()


def test_closing_the_consumer_of_stream_in_thread_stops_the_forward_pass(lm, fitted):
    slow = _Slow(lm, 0.25)
    try:
        before = oc.active_hooks(lm.model)
        cancel, ended = threading.Event(), threading.Event()

        def make() -> Iterator:
            try:
                yield from compare(lm, fitted, PROMPT, settings=TOKENS, cancel=cancel)
            finally:
                ended.set()

        stream = stream_in_thread(make, cancel=cancel)
        next(stream)
        time.sleep(0.2)
        closed = time.monotonic()
        stream.close()  # a closed browser tab or a Stop click
        assert ended.wait(10) and time.monotonic() - closed < 1.0
        assert cancel.is_set()
        _assert_clean(lm, before)
    finally:
        slow.remove()


def test_a_cancel_raised_inside_the_forward_pass_frees_the_cache_and_leaves_no_hook(lm, fitted):
    fresh = _plain_generate(lm)
    before = oc.active_hooks(lm.model)
    first_layer, last_layer = lm.layers[0], lm.layers[-1]
    calls = {"first": 0, "last": 0}
    caches: list[weakref.ref] = []

    def count(name):
        return lambda module, args, output: calls.__setitem__(name, calls[name] + 1)

    handles = [
        first_layer.register_forward_hook(count("first")),
        last_layer.register_forward_hook(count("last")),
        lm.model.register_forward_hook(lambda m, a, out: caches.append(weakref.ref(out.cache))),
    ]
    try:
        # True once the first layer of the third forward call (second decoding step) has run.
        stream = compare(lm, fitted, PROMPT, settings=TOKENS, cancel=lambda: calls["first"] >= 3)
        comparisons = [[len(arm.token_ids) for arm in c.arms] for c in stream]
        assert calls == {"first": 3, "last": 2}  # the third pass stopped between its layers
        assert len(caches) == 2  # the model returned twice; the third call raised
    finally:
        for handle in handles:
            handle.remove()
    assert comparisons == [[1, 1, 1], [2, 2, 2], [2, 2, 2]]
    gc.collect()
    assert all(ref() is None for ref in caches)  # the KV cache went with the stream
    _assert_clean(lm, before)
    assert _plain_generate(lm) == fresh


def test_the_final_stopped_comparison_holds_no_kv_cache(lm, fitted):
    caches: list[weakref.ref] = []
    handle = lm.model.register_forward_hook(lambda m, a, out: caches.append(weakref.ref(out.cache)))
    cancel = threading.Event()
    try:
        stream = compare(lm, fitted, PROMPT, settings=TOKENS, cancel=cancel)
        next(stream)
        next(stream)
        cancel.set()
        assert _stopped(next(stream))  # paused at its last item
        gc.collect()
        assert caches and all(ref() is None for ref in caches)
    finally:
        handle.remove()
    stream.close()


def test_a_request_cancelled_before_it_starts_runs_no_forward_pass(lm, fitted):
    calls = []
    handle = lm.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        cancel = threading.Event()
        cancel.set()
        (only,) = list(compare(lm, fitted, PROMPT, settings=TOKENS, cancel=cancel))
    finally:
        handle.remove()
    assert calls == [] and _stopped(only) and all(arm.token_ids == [] for arm in only.arms)


def test_a_bad_cancel_signal_is_refused(lm, fitted):
    with pytest.raises(TypeError, match="cancel must be"):
        list(compare(lm, fitted, PROMPT, settings=TOKENS, cancel="stop"))

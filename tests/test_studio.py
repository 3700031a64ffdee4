"""The app's backend: streams kept on one thread, throttling, allow-lists, shared fitting."""

from __future__ import annotations

import gc
import threading
import time

import pytest

import odesteer_core as oc
from odesteer_core.studio.backend import DEFAULT_ALLOWED, Studio, allowed_models
from odesteer_core.studio.streaming import stream_in_thread


def numbers(n, log, delay=0.0):
    try:
        for i in range(n):
            log.append(threading.get_ident())
            time.sleep(delay)
            yield i
    finally:
        log.append("closed")


def test_stream_yields_everything_in_order_from_one_thread():
    log = []
    assert list(stream_in_thread(lambda: numbers(20, log))) == list(range(20))
    idents = set(log[:-1])
    assert log[-1] == "closed" and len(idents) == 1 and threading.get_ident() not in idents


def test_stream_runs_on_one_thread_even_when_advanced_from_many():
    # Gradio advances a sync generator from whichever worker thread is free.
    log, seen = [], []
    stream = stream_in_thread(lambda: numbers(6, log))

    def advance():
        seen.append(next(stream))

    for _ in range(6):
        t = threading.Thread(target=advance)
        t.start()
        t.join()
    assert seen == list(range(6)) and len(set(log[:6])) == 1


def test_throttled_stream_keeps_first_and_last():
    out = list(stream_in_thread(lambda: numbers(30, [], delay=0.001), min_interval=10.0))
    assert out == [0, 29]


def test_errors_reach_the_consumer():
    def broken():
        yield 1
        raise ValueError("bad strength")

    stream = stream_in_thread(broken)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad strength"):
        next(stream)


def test_closing_the_consumer_stops_and_closes_the_producer():
    log = []
    stream = stream_in_thread(lambda: numbers(10_000, log, delay=0.001))
    next(stream)
    stream.close()
    for _ in range(200):
        if log and log[-1] == "closed":
            break
        time.sleep(0.01)
    assert log[-1] == "closed" and len(log) < 10_000


def test_allow_list(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("ODESTEER_PUBLIC", raising=False)
    monkeypatch.delenv("ODESTEER_ALLOWED_MODELS", raising=False)
    assert allowed_models() is None  # a private machine loads anything
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert allowed_models() == DEFAULT_ALLOWED
    monkeypatch.setenv("ODESTEER_ALLOWED_MODELS", " a/b , c/d ,")
    assert allowed_models() == ("a/b", "c/d")


def test_concurrent_fits_of_one_concept_fit_once(tmp_path):
    studio = Studio(oc.TINY_RANDOM_LLAMA, cache_dir=str(tmp_path), warm_projections=("pca",))
    lm = studio.model(oc.TINY_RANDOM_LLAMA)
    concept = studio.concept("polite")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(studio.fit(lm, concept))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(r is results[0] for r in results)
    assert studio.projector(results[0], "pca") is studio.projector(results[0], "pca")
    gc.collect()
    assert len(studio._locks) == 0  # locks live only while in use: no growth per concept


def test_many_custom_concepts_leave_no_locks_behind(tmp_path):
    studio = Studio(oc.TINY_RANDOM_LLAMA, cache_dir=str(tmp_path), warm_projections=())
    lm = studio.model(oc.TINY_RANDOM_LLAMA)
    for i in range(3):
        pos = "\n".join(f"Thank you kindly, friend number {i}-{j}." for j in range(8))
        neg = "\n".join(f"Go away, person number {i}-{j}." for j in range(8))
        studio.fit(lm, studio.concept("custom", positive_text=pos, negative_text=neg))
    gc.collect()
    assert len(studio._locks) == 0 and len(studio._fitted) == 3

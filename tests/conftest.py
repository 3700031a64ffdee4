"""Fixtures shared by the test modules: one CPU thread, a private offline cache, the tiny Llama
and a polite-vs-rude concept fitted on it. A module that needs another ``lm`` or ``fitted``
defines its own fixture of that name, which takes precedence over these."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import fit_tiny_polite, single_thread, tiny_model


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test (use with ``pytestmark = usefixtures("one_thread")``)."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory) -> Iterator[Path]:
    """A private ``ODESTEER_CACHE`` with the Hub switched off, for in-process CLI runs."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODESTEER_CACHE", str(path))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield path


@pytest.fixture(scope="module")
def lm():
    """The tiny random-weight Llama."""
    return tiny_model("llama")


@pytest.fixture(scope="module")
def fitted(lm, tmp_path_factory):
    """A polite-vs-rude concept fitted on ``lm``."""
    return fit_tiny_polite(lm, tmp_path_factory.mktemp("acts"))

"""The app as a public deployment sees it: every API parameter is hostile input.

The app runs in public mode (``ODESTEER_PUBLIC=1``) on the offline model and is called through
``gradio_client`` as any stranger could: planted server files must never be read or echoed,
oversized work is refused before it starts, abandoned calls do not block the next user, and
``python app.py`` answers its first call soon after it starts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import odesteer_core as oc
from odesteer_core.pipeline.request import CompareRequest
from odesteer_core.studio import Studio
from odesteer_core.ui import build_app, concurrency
from odesteer_core.ui.api import compare as api_compare

ROOT = Path(__file__).resolve().parents[1]
CANARY = "CANARY-7f3a9c"
PROMPT = "How should I answer an angry email?"


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, Path]:
    """Secret files in every format a concept may have, each with the canary inside."""
    folder = tmp_path_factory.mktemp("secrets")
    files = {
        "jsonl": folder / "secret.jsonl",
        "csv": folder / "secret.csv",
        "txt": folder / "secret.txt",
        "plain": folder / "secret",
    }
    files["jsonl"].write_text(f'{{"{CANARY}": "x"}}\n')
    files["csv"].write_text(f"{CANARY},other\n1,2\n")
    files["txt"].write_text(f"{CANARY}\n")
    files["plain"].write_text(f"{CANARY}\n")
    return files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODESTEER_PUBLIC", "1")
        mp.delenv("ODESTEER_ALLOWED_MODELS", raising=False)
        studio = Studio(
            oc.TINY_RANDOM_LLAMA,
            cache_dir=str(tmp_path_factory.mktemp("acts")),
            warm_projections=("pca",),
        )
        demo = build_app(studio).queue(default_concurrency_limit=concurrency())
        demo.launch(prevent_thread_lock=True, server_port=None, quiet=True)
        yield demo.local_url
        demo.close()


def call(url: str, *args):
    """``/compare`` through a fresh client; the result, or the error's message."""
    from gradio_client import Client

    try:
        return Client(url, verbose=False).predict(*args, api_name="/compare")
    except Exception as err:  # gradio_client raises AppError with the app's message
        return err


def _paths_to(planted: dict[str, Path]) -> list[str]:
    """Every way to name the planted files: absolute, relative with ``..``, with ``~``."""
    names = []
    for path in planted.values():
        names.append(str(path))
        names.append(os.path.relpath(path, Path.cwd()))
        names.append(str(Path("..") / ".." / os.path.relpath(path, Path.cwd().parent.parent)))
        home = Path.home()
        if path.is_relative_to(home):
            names.append("~/" + str(path.relative_to(home)))
    return names


def test_concept_never_reads_a_server_path(server, planted):
    for name in _paths_to(planted):
        answer = call(server, PROMPT, name, 0.2, 2, "caa", 2, 0)
        assert isinstance(answer, Exception), name
        assert CANARY not in str(answer)
        assert "Unknown concept" in str(answer)


def test_existing_and_missing_paths_answer_alike(server, planted):
    existing = str(planted["jsonl"])
    missing = existing.replace("secret", "secrex")  # same length, no file
    answers = [str(call(server, PROMPT, name, 0.2, 2, "caa", 2, 0)) for name in (existing, missing)]
    assert answers[0].replace("secret", "X") == answers[1].replace("secrex", "X")


@pytest.mark.parametrize("position", [0, 4, 7])  # prompt, one_step_method, projection
def test_no_string_parameter_reads_a_file(server, planted, position):
    args = [PROMPT, "polite", 0.2, 2, "caa", 2, 0, "pca"]
    for name in _paths_to(planted):
        args[position] = name
        answer = call(server, *args)
        text = str(answer)
        assert CANARY not in text
        if position == 0:  # a path as prompt is just text to answer
            assert not isinstance(answer, Exception) and answer["done"]
        else:
            assert isinstance(answer, Exception) and "must be one of" in text


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        ((PROMPT, "polite", 0.2, 10**6), "steps"),
        ((PROMPT, "polite", 1e9), "strength"),
        ((PROMPT, "polite", -0.5), "strength"),
        ((PROMPT, "polite", 0.2, 10, "caa", 10**6), "max_new_tokens"),
        ((PROMPT, "polite", 0.2, 10, "caa", 8, 2**64), "seed"),
        ((PROMPT, "polite", 0.2, 10, "caa", 8, -1), "seed"),
        ((PROMPT, "polite", 0.2, 2.5), "steps"),
        ((PROMPT, "polite", 0.2, 10, "caa", 7.5), "max_new_tokens"),
        ((["a", "list"], "polite"), "prompt"),
        ((None, "polite"), "prompt"),
        (("x" * 9000, "polite"), "prompt"),
        ((PROMPT, ["polite"]), "concept"),
    ],
)
def test_oversized_or_malformed_work_is_refused_before_it_starts(server, args, setting):
    t0 = time.perf_counter()
    answer = call(server, *args)
    assert time.perf_counter() - t0 < 5.0  # refused before any work (~0.2 s; the 2 s target:
    assert isinstance(answer, Exception)  # benchmarks/app_speed.py, not a timed test)
    assert setting in str(answer)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("caf\ud800e", "polite"), "prompt contains invalid characters"),
        ((PROMPT, "polite", float("nan")), "strength"),
        ((PROMPT, "polite", float("inf")), "strength"),
        ((PROMPT, "polite", 0.2, True), "steps"),
    ],
)
def test_values_no_json_client_sends_are_clear_errors(args, message):
    # gradio_client cannot encode these, so call the endpoint function as Gradio does.
    with pytest.raises(ValueError, match=message):
        list(api_compare(*args))


def test_every_limit_is_checked_in_one_place():
    with pytest.raises(ValueError, match="unknown settings"):
        CompareRequest.from_values({"prompt": PROMPT, "path": "/etc/passwd"})
    request = CompareRequest.from_values({"prompt": PROMPT, "steps": 10.0, "seed": 2**63 - 1})
    assert request.steering.steps == 10 and request.generation.seed == 2**63 - 1


def test_a_normal_call_answers_promptly_after_abandoned_maximal_ones(server):
    from gradio_client import Client

    maximal = (PROMPT, "polite", 4.0, 50, "caa", 256, 0, "pca")
    clients = [Client(server, verbose=False) for _ in range(3)]
    jobs = [c.submit(*maximal, api_name="/compare") for c in clients]
    time.sleep(0.5)
    for job in jobs:
        job.cancel()  # what a closed tab or a dropped connection does
    t0 = time.perf_counter()
    result = Client(server, verbose=False).predict(PROMPT, "polite", 0.2, 10, "caa", 4, 0)
    assert result["done"] and time.perf_counter() - t0 < 30.0  # target 10 s: app_speed.py


def test_public_uploads_come_only_from_gradio(monkeypatch, tmp_path, planted):
    monkeypatch.setenv("ODESTEER_PUBLIC", "1")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    studio = Studio.__new__(Studio)  # only .concept is used: no model needed
    with pytest.raises(ValueError, match="upload box") as err:
        studio.concept("custom", upload=str(planted["txt"]))
    assert CANARY not in str(err.value)
    upload = tmp_path / "gradio" / "abc123" / "my concept.txt"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"\x00binary")
    with pytest.raises(ValueError, match="binary") as err:
        studio.concept("custom", upload=str(upload))
    assert "'my concept.txt'" in str(err.value) and str(tmp_path) not in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_first_call_is_answered_soon_after_start(tmp_path):
    from gradio_client import Client

    port = _free_port()
    env = {
        **os.environ,
        "ODESTEER_MODEL": oc.TINY_RANDOM_LLAMA,
        "ODESTEER_PUBLIC": "1",
        "ODESTEER_CACHE": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("ODESTEER_SMOKE", None)
    t0 = time.perf_counter()
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        result = None
        while result is None and time.perf_counter() - t0 < 60:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # not serving yet
                time.sleep(0.2)
                continue
            result = client.predict(PROMPT, "polite", 0.2, 10, "caa", 8, 0, api_name="/compare")
        elapsed = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert result is not None and result["done"], (tmp_path / "app.log").read_text()[-2000:]
    assert elapsed < 60.0, f"first answer after {elapsed:.1f} s"  # target 20 s: app_speed.py


def _start_app_failing(cache: Path, args: list[str], env: dict[str, str] | None = None) -> str:
    """Start ``app.py`` with settings that must stop it; its standard error."""
    env = {
        **os.environ,
        "ODESTEER_MODEL": oc.TINY_RANDOM_LLAMA,
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
    }
    env["ODESTEER_CACHE"] = str(cache)
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"ODESTEER_CONCURRENCY": "abc"}, [], "ODESTEER_CONCURRENCY must be a whole number"),
        ({}, ["--port", "http"], "must be a port number"),
    ],
)
def test_bad_start_settings_are_one_clear_line(tmp_path, env, args, message):
    assert message in _start_app_failing(tmp_path, args, env)


def test_a_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert "in use" in _start_app_failing(tmp_path, ["--port", str(port)])

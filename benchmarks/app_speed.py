"""App speed on the offline model: start-up, API overhead over the Python API, token-slider replot.

  app start         ``python app.py`` as a subprocess until its page answers (offline model)
  python API        ``oc.compare`` + ``project_comparison`` in this process: time to the first
                    streamed token of all three arms, and to the full comparison with paths
  gradio_client     the same call through the ``/compare`` endpoint of that app (streamed), from
                    this process as a user's client: first streamed output, and the final result
  replot            the token-slider handler (index precomputed paths, build both figures) plus
                    the JSON encoding Gradio sends, per token, for the PCA and UMAP views

The concept is fitted (and its projections warmed) before timing, as in the app after start-up.
Targets (issue 4): app start <= 20 s; first tokens <= 2 s after the click; app overhead <= 20 %;
replot <= 300 ms. Medians over ``--repeats`` rounds, the two call paths interleaved.

Usage: python benchmarks/app_speed.py [--tokens 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

PROMPT = "How should I reply to a colleague who missed the deadline?"


def random_85m_folder() -> str:
    """The random Llama of ``generation_speed.py`` with the test tokenizer's 512-token vocabulary
    (so every token decodes to text; 85 M parameters), saved once as a model folder and loaded by
    the app like any local model: per-token costs like a small real LM."""
    import odesteer_core as oc

    folder = oc.cache_root() / "benchmark-random-llama-85m"
    if not (folder / "config.json").is_file():
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from generation_speed import PRESETS, build_lm

        preset = {**PRESETS["cpu-85m"]}
        preset["config"] = {**preset["config"], "vocab_size": 512}
        lm = build_lm(preset)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
    return str(folder)


def start_app(model: str, timeout: float = 180.0) -> tuple[subprocess.Popen, str, float]:
    """``python app.py`` on ``model`` in its own process, as users run it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ODESTEER_MODEL": model, "GRADIO_ANALYTICS_ENABLED": "0"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the app did not start in time")


def guard_times(client, url: str, call: tuple) -> dict[str, float]:
    """Seconds to refuse oversized work, and to answer after three abandoned maximal calls."""
    from gradio_client import Client

    times = {}
    for name, bad in (("steps=10**6", (*call[:3], 10**6)), ("strength=1e9", (*call[:2], 1e9))):
        t0 = time.perf_counter()
        try:
            client.predict(*bad, api_name="/compare")
        except Exception:  # the refusal
            times[f"{name} refused in (target <= 2 s)"] = time.perf_counter() - t0
    maximal = (call[0], call[1], 4.0, 50, "caa", 256, 0, "pca")
    jobs = [Client(url, verbose=False).submit(*maximal, api_name="/compare") for _ in range(3)]
    time.sleep(0.5)
    for job in jobs:
        job.cancel()
    t0 = time.perf_counter()
    client.predict(*call, api_name="/compare")
    times["normal call after 3 abandoned maximal ones (target <= 10 s)"] = time.perf_counter() - t0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concept", default="sentiment", help="default: the app's first")
    parser.add_argument(
        "--model",
        default="tiny-trained-llama",
        choices=("tiny-trained-llama", "tiny-random-llama", "random-85m"),
        help="the shipped demo model (the offline default), the offline test model, or an 85 M "
        "random Llama (realistic per-token cost)",
    )
    args = parser.parse_args()

    args.model_path = random_85m_folder() if args.model == "random-85m" else args.model
    proc, url, start_s = start_app(args.model_path)
    try:
        run(args, url, start_s)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(args: argparse.Namespace, url: str, start_s: float) -> None:
    import json

    from gradio_client import Client

    import odesteer_core as oc
    from odesteer_core.studio import Studio
    from odesteer_core.studio.streaming import stream_in_thread
    from odesteer_core.ui import build_app, handlers
    from odesteer_core.view.trajectory import project_comparison

    call = (PROMPT, args.concept, 0.3, 10, "caa", args.tokens, 0, "pca")
    client = Client(url, verbose=False)
    t0 = time.perf_counter()
    client.predict(*call, api_name="/compare")  # the first call after start
    first_call_s = start_s + time.perf_counter() - t0
    guard = guard_times(client, url, call)
    studio = Studio(args.model_path, warm_projections=("plane", "pca", "umap"))
    lm = studio.model(args.model_path)
    fitted = studio.fit(lm, studio.concept(args.concept))
    build_app(studio)  # the handlers timed below use this studio
    settings = oc.GenerationSettings(max_new_tokens=args.tokens)

    def python_api() -> tuple[float, float]:
        t0 = time.perf_counter()
        first = None
        stream = stream_in_thread(
            lambda: oc.compare(lm, fitted, PROMPT, oc.Steering(strength=0.3, steps=10), settings)
        )
        for comparison in stream:
            if first is None and all(arm.tokens for arm in comparison.arms):
                first = time.perf_counter() - t0
        project_comparison(studio.projector(fitted, "pca"), comparison, fitted).to_dict()
        return first, time.perf_counter() - t0

    def through_client() -> tuple[float, float]:
        t0 = time.perf_counter()
        job = client.submit(*call, api_name="/compare")
        first = None
        for output in job:
            if first is None and all(output["texts"].values()):
                first = time.perf_counter() - t0
        result = job.result()
        assert result["done"]
        return first, time.perf_counter() - t0

    python_api(), through_client()  # warm up both paths
    rows = {"python API": [], "gradio_client": []}
    for _ in range(args.repeats):
        rows["python API"].append(python_api())
        rows["gradio_client"].append(through_client())

    form = {
        "prompt": PROMPT, "concept": args.concept, "one_step": "caa", "strength": 0.3,
        "steps": 10, "max_new_tokens": args.tokens, "repetition_penalty": 1.0,
    }  # fmt: skip
    state = list(handlers.generate(form, {}))[-1].state
    replot = {}
    for projection in ("plane", "pca", "umap"):
        handlers.replot(state, projection, 1, True)  # project once, as a projection switch does
        times = []
        for token in range(1, args.tokens + 1):
            t0 = time.perf_counter()
            update = handlers.replot(state, projection, token, True)
            for fig in (update.trajectory, update.barrier):
                json.dumps(fig.to_plotly_json(), default=str)
            times.append(time.perf_counter() - t0)
        replot[projection] = 1000 * statistics.median(times), 1000 * max(times)

    print(
        f"{platform.machine()}, {os.cpu_count()} cores, {date.today()}; model {args.model}, "
        f"{args.tokens} new tokens, median of {args.repeats} rounds\n"
    )
    print(f"app start (python app.py until the page answers): {start_s:.1f} s")
    print(f"first /compare answered {first_call_s:.1f} s after start (target <= 20 s)")
    for name, seconds in guard.items():
        print(f"{name}: {seconds:.2f} s")
    print("\n| path | first tokens of all three arms (s) | full comparison with paths (s) |")
    print("|---|---:|---:|")
    med = {}
    for name, values in rows.items():
        med[name] = [statistics.median(v[i] for v in values) for i in (0, 1)]
        print(f"| {name} | {med[name][0]:.3f} | {med[name][1]:.3f} |")
    overhead = med["gradio_client"][1] / med["python API"][1] - 1
    print(
        f"\napp overhead on the full comparison: {overhead:+.1%} (target <= +20 %) "
        f"{'PASS' if overhead <= 0.2 else 'FAIL'}"
    )
    print(
        f"first tokens through the app: {med['gradio_client'][0]:.2f} s (target <= 2 s) "
        f"{'PASS' if med['gradio_client'][0] <= 2 else 'FAIL'}"
    )
    for projection, (median, worst) in replot.items():
        print(
            f"token-slider replot, {projection}: median {median:.0f} ms, worst {worst:.0f} ms "
            f"(target <= 300 ms) {'PASS' if worst <= 300 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()

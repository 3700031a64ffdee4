"""ODESteer Studio: unsteered, one-step and ODESteer generations side by side, with trajectories.

The entry point (Hugging Face Spaces runs this file): arguments, the shared ``Studio``, launch.
The page, its handlers and the ``/compare`` API are ``odesteer_core.ui``. Run ``python app.py``
(model from ``--model`` or ``ODESTEER_MODEL``; ``tiny-random-llama`` runs offline).
"""

from __future__ import annotations

import argparse
import os
import socket

from odesteer_core.lm.loading import TINY_TRAINED_LLAMA, hub_reachable
from odesteer_core.lm.presets import check_demo_model
from odesteer_core.studio import DEFAULT_MODEL, Studio, concept_choices
from odesteer_core.ui import CSS, build_app, concurrency

SMOKE_PROMPT = "How do I ask for a raise?"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="ODESteer Studio")
    parser.add_argument(
        "--model",
        default=os.environ.get("ODESTEER_MODEL"),
        help=f"Hub id, local folder or preset (default: {DEFAULT_MODEL}; without network the "
        f"shipped demo model {TINY_TRAINED_LLAMA})",
    )
    parser.add_argument("--truthfulqa-csv", default=os.environ.get("ODESTEER_TRUTHFULQA_CSV"))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("GRADIO_SERVER_PORT", "7860"))
    parser.add_argument(
        "--smoke",
        action="store_true",
        default=os.environ.get("ODESTEER_SMOKE") == "1",
        help="start, call /compare once through gradio_client, stop (CI sets ODESTEER_SMOKE=1)",
    )
    args = parser.parse_args()
    if not str(args.port).isdigit() or not 1 <= int(args.port) <= 65535:
        parser.error(f"--port (or GRADIO_SERVER_PORT) must be a port number, got {args.port!r}")
    args.port = int(args.port)
    return args


def default_model() -> str:
    """The Hub default, or the shipped demo model when the Hub cannot be reached."""
    try:
        check_demo_model()
    except ValueError as err:  # not built in this checkout: the Hub default says what to do
        print(f"note: {err}", flush=True)
        return DEFAULT_MODEL
    if hub_reachable():
        return DEFAULT_MODEL
    print(
        f"note: the Hugging Face Hub is not reachable, so the app starts on the shipped demo "
        f"model {TINY_TRAINED_LLAMA} (a tiny Llama trained on templated English chat); name "
        "another with --model or ODESTEER_MODEL",
        flush=True,
    )
    return TINY_TRAINED_LLAMA


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host if host != "0.0.0.0" else "", port))
        except OSError:
            return False
    return True


def smoke(url: str) -> None:
    """One ``/compare`` call through ``gradio_client``: the three arms must come back."""
    from gradio_client import Client

    result = Client(url, verbose=False).predict(
        SMOKE_PROMPT, concept_choices()[0], api_name="/compare"
    )
    arms = result["texts"]
    print(f"smoke: /compare returned {len(arms)} arms: {sorted(arms)}", flush=True)
    if sorted(arms) != ["none", "odesteer", "one_step"] or not result["done"]:
        raise SystemExit("error: /compare did not return the three arms")


def main() -> None:
    args = parse_args()
    try:
        limit = concurrency()
        if not port_is_free(args.host, args.port):
            raise ValueError(
                f"port {args.port} on {args.host} is in use (another app running?); "
                "choose another with --port or GRADIO_SERVER_PORT"
            )
        studio = Studio(args.model or default_model(), truthfulqa_csv=args.truthfulqa_csv)
        # Fit the first concept while the page is built and the server starts: a first request
        # that comes sooner waits for this fit (one lock per concept) instead of fitting again.
        studio.warm_up(concept_choices()[0])
        demo = build_app(studio)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    demo.queue(default_concurrency_limit=limit).launch(
        server_name=args.host, server_port=args.port, css=CSS, prevent_thread_lock=args.smoke
    )
    if args.smoke:
        try:
            smoke(demo.local_url)
        finally:
            demo.close()


if __name__ == "__main__":
    main()

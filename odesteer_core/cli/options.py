"""Command-line options shared by every command, defined once, and the model loader they feed.

``add_model_options`` (which model, where, in which dtype), ``add_output_options`` (``--json``,
``--quiet``) and ``positive_int`` are used by ``commands.py`` and ``eval_commands.py`` alike.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["add_model_options", "add_output_options", "load_model", "positive_int"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--revision``, ``--device``, ``--dtype``, ``--trust-remote-code``."""
    p.add_argument("--model", required=True, help="Hub id, local folder, or tiny-random-llama")
    p.add_argument("--revision", default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: auto)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--json`` (one JSON object on the last line of standard output) and ``--quiet``."""
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def load_model(args: argparse.Namespace):
    """Load the model named by ``add_model_options``; returns ``(LoadedLM, seconds)``."""
    from odesteer_core.lm.loading import load_lm  # heavy: imported when a command runs

    t0 = time.perf_counter()
    lm = load_lm(
        args.model,
        device=args.device,
        dtype=args.dtype,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
    )
    return lm, time.perf_counter() - t0

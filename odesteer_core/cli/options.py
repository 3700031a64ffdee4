"""Command-line options shared by every command, defined once, and the model loader they feed.

``add_model_options`` (which model, where, in which dtype), ``add_output_options`` (``--json``,
``--quiet``), ``add_sampling_options`` (how the arms decode) and ``positive_int`` are used by
``commands.py`` and ``eval_commands.py`` alike; ``generation_settings`` and ``sampling_values``
read the sampling options back. ``honour_quiet`` turns every progress bar off under ``--quiet``.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "add_model_options",
    "add_output_options",
    "add_sampling_options",
    "check_layer_option",
    "check_out_option",
    "generation_settings",
    "honour_quiet",
    "load_model",
    "positive_int",
    "progress_bars",
    "sampling_values",
]

PAPER_DEFAULTS = {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}  # with sampling
PLAIN_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "repetition_penalty": 1.0}  # off


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


def add_sampling_options(
    p: argparse.ArgumentParser, *, paper: bool, max_new_tokens: int | None
) -> None:
    """``--max-new-tokens``, ``--sample``/``--greedy``, ``--temperature``, ``--top-p``,
    ``--top-k``, ``--repetition-penalty`` and ``--seed``.

    ``paper``: sample by default with the paper's settings (``--greedy`` turns sampling off);
    otherwise decode greedily (``--sample`` turns sampling on) with every knob off.
    ``max_new_tokens`` None: the command picks it (e.g. the task's).
    """
    defaults = PAPER_DEFAULTS if paper else PLAIN_DEFAULTS
    help_new = "default: the task's" if max_new_tokens is None else f"default {max_new_tokens}"
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens, help=help_new)
    if paper:
        p.add_argument("--greedy", dest="do_sample", action="store_false", help="do not sample")
    else:
        p.add_argument("--sample", dest="do_sample", action="store_true", help="sample, not greedy")
    p.add_argument("--temperature", type=float, default=defaults["temperature"])
    p.add_argument("--top-p", type=float, default=defaults["top_p"])
    p.add_argument("--top-k", type=int, default=0, help="0: off")
    p.add_argument("--repetition-penalty", type=float, default=defaults["repetition_penalty"])
    p.add_argument("--seed", type=int, default=0, help="seed of sampling (and of fits and splits)")


def sampling_values(args: argparse.Namespace) -> dict:
    """The options of ``add_sampling_options`` as ``GenerationSettings`` fields."""
    names = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
    return {**{name: getattr(args, name) for name in names}, "seed": args.seed}


def generation_settings(args: argparse.Namespace, *, max_new_tokens: int | None = None):
    """``GenerationSettings`` of the sampling options; ``max_new_tokens``: when not given."""
    from odesteer_core.lm.sampling import GenerationSettings

    values = sampling_values(args)
    if values["max_new_tokens"] is None:
        values["max_new_tokens"] = max_new_tokens
    try:
        return GenerationSettings(**values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{err} (see --help)") from None


def check_layer_option(layer: int | None) -> None:
    """``--layer`` is None or a 0-based layer; the model's depth is checked once it is loaded."""
    if layer is not None and layer < 0:
        raise ValueError(f"--layer must be a decoder layer index >= 0, got {layer}")


def check_out_option(path: str, flag: str = "--out") -> None:
    """``--out`` can be written (checked before the slow model load)."""
    from odesteer_core.evaluation.specs import check_writable

    check_writable(path, flag)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """With ``enabled`` False: no progress bar of transformers or the Hub (e.g. "Loading
    weights", "Writing model shards") inside the block; the previous state comes back after."""
    if enabled:
        yield
        return
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf_logging

    transformers_on = hf_logging.is_progress_bar_enabled()
    hub_on = not hub.are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # and the Hub's
    try:
        yield
    finally:
        if transformers_on:
            hf_logging.enable_progress_bar()  # and the Hub's
        if hub_on == hub.are_progress_bars_disabled():  # the Hub's back as they were
            (hub.enable_progress_bars if hub_on else hub.disable_progress_bars)()


def honour_quiet(command: Callable[[argparse.Namespace], dict]) -> Callable:
    """``command`` with every progress bar off when its arguments ask for ``--quiet``.

    The package's own bars follow ``progress=not args.quiet``; this silences the libraries'.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> dict:
        with progress_bars(not getattr(args, "quiet", False)):
            return command(args)

    return run


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

"""The ``eval`` subcommand: ``python -m odesteer_core eval {truthfulqa-mc,generate} ...``.

Follows ``commands.py``: with ``--json`` the last line of standard output is one JSON object, progress
bars go to stderr (none with ``--quiet``), and user errors become ``error: ...`` with exit status 2.
Every option is checked, and the prompts and concepts are read, before the (slow) model load.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from contextlib import contextmanager

from odesteer_core.cli.options import (
    add_model_options,
    add_output_options,
    add_sampling_options,
    check_out_option,
    generation_settings,
    honour_quiet,
    load_model,
    positive_int,
)

__all__ = ["add_eval_parser", "cmd_eval_generate", "cmd_eval_truthfulqa_mc"]

_METHODS_HELP = "comma-separated: none, caa, iti, repe, step_odesteer, odesteer, linear_act"
# {field of the value object: dest of its option}
_SWEEP = {
    "methods": "methods",
    "strengths": "strength",
    "targets": "targets",
    "layer": "layer",
    "steps": "steps",
    "solver": "solver",
    "seed": "seed",
    "batch_size": "batch_size",
}
_SOURCE = {
    "data": "data",
    "concept": "concept",
    "truthfulqa_csv": "truthfulqa_csv",
    "limit": "limit",
}
_SCORER = {
    "model": "scorer",
    "label": "scorer_label",
    "pairs": "scorer_pairs",
    "device": "scorer_device",
}
# (label, key, format) of each column of the printed tables
_MC_COLUMNS = (("MC1", "mc1", ".3f"), ("MC2", "mc2", ".3f"), ("MC3", "mc3", ".3f"))
_GEN_COLUMNS = (
    ("distinct-2", "distinct_2", ".3f"),
    ("perplexity", "perplexity", ".2f"),
    ("score", "score", ".3f"),
)


def _common(p: argparse.ArgumentParser, *, default_strength: float) -> None:
    add_model_options(p)
    p.add_argument("--truthfulqa-csv", default=None, help="local TruthfulQA CSV (offline)")
    p.add_argument(
        "--methods", default="none,caa,iti,repe,step_odesteer,odesteer", help=_METHODS_HELP
    )
    p.add_argument(
        "--strength", type=float, nargs="+", default=[default_strength],
        help="relative strength(s); several values make a sweep",
    )  # fmt: skip
    p.add_argument("--limit", type=positive_int, default=None, help="use the first N questions")
    p.add_argument("--layer", type=int, default=None, help="decoder layer (default ~40%% depth)")
    p.add_argument("--steps", type=int, default=None, help="ODE methods' solver steps (10)")
    p.add_argument("--solver", default=None, help="euler, midpoint, rk4")
    p.add_argument("--batch-size", type=positive_int, default=8, help="rows per forward pass")
    add_output_options(p)


@contextmanager
def _as_options(options: dict[str, str]) -> Iterator[None]:
    """A ``SettingError`` inside names the option of its field (``--strength``), not the field."""
    from odesteer_core.evaluation.specs import SettingError

    try:
        yield
    except SettingError as err:
        flag = "--" + options.get(err.field, err.field).replace("_", "-")
        raise ValueError(f"{flag}: {err}") from None


def _from_args(kind: type, args: argparse.Namespace, options: dict[str, str]):
    """``kind`` (a value object checked on construction) made of the command's ``options``."""
    with _as_options(options):
        return kind(**{f: getattr(args, d) for f, d in options.items() if hasattr(args, d)})


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


def _report(args: argparse.Namespace, evaluation, title: str, columns: tuple) -> dict:
    """Print (unless ``--json``) the notes, ``title``, then one table per strength: a line per
    method, with ``columns`` (label, key, format); return the JSON summary."""
    if not args.json:
        _print_tables(evaluation, title, columns)
    return evaluation.to_dict()


def _print_tables(evaluation, title: str, columns: tuple[tuple[str, str, str], ...]) -> None:
    for note in evaluation.notices:
        print(f"note: {note}")
    print(title)
    for entry in evaluation.sweep:
        kind = "target" if "target" in entry else "strength"
        print(f"{kind} {entry[kind]:g}")
        for method, r in entry["results"].items():
            cells = [f"{label} {_cell(r[key], fmt)}" for label, key, fmt in columns if key in r]
            print(f"  {method:<14} {'  '.join(cells)}")


def cmd_eval_truthfulqa_mc(args: argparse.Namespace) -> dict:
    """TruthfulQA MC1/MC2 per method and strength (2-fold protocol)."""
    from odesteer_core.evaluation import PromptSource, Sweep, evaluate_truthfulqa_mc
    from odesteer_core.evaluation.prompts import two_fold

    sweep = _from_args(Sweep, args, _SWEEP)  # all checks before the (slow) model load
    questions, notices = _from_args(PromptSource, args, _SOURCE).questions()
    two_fold(questions, sweep)  # enough questions to split, and to fit on either half
    lm, load_s = load_model(args)
    evaluation = evaluate_truthfulqa_mc(lm, questions, sweep, progress=not args.quiet)
    evaluation.timing["load_s"] = load_s
    evaluation.notices[:0] = notices
    title = f"TruthfulQA MC, {len(questions)} questions, 2-fold, layer {evaluation.layer}"
    return _report(args, evaluation, title, _MC_COLUMNS)


def cmd_eval_generate(args: argparse.Namespace) -> dict:
    """Generate with every method, save JSONL, report distinct-n, perplexity and scores."""
    from odesteer_core.evaluation import PromptSource, Scorer, Sweep, evaluate_generation

    sweep = _from_args(Sweep, args, _SWEEP)  # all checks before the (slow) model load
    source = _from_args(PromptSource, args, _SOURCE)
    if args.scorer is None and (args.scorer_label or args.scorer_pairs or args.scorer_device):
        raise ValueError("--scorer-label, --scorer-pairs and --scorer-device need --scorer MODEL")
    scorer = None if args.scorer is None else _from_args(Scorer, args, _SCORER)
    settings = generation_settings(args, max_new_tokens=source.max_new_tokens)
    check_out_option(args.out)
    with _as_options(_SOURCE):
        prompts = source.load(sweep)  # the prompts and the concept, read before the model
    lm, load_s = load_model(args)
    evaluation = evaluate_generation(
        lm, prompts, settings=settings, scorer=scorer, out=args.out, progress=not args.quiet
    )
    evaluation.timing["load_s"] = load_s
    title = f"{len(evaluation.rows)} generations saved to {evaluation.out}"
    return _report(args, evaluation, title, _GEN_COLUMNS)


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``eval truthfulqa-mc`` and ``eval generate`` on the main parser's subparsers."""
    evaluate = sub.add_parser("eval", help="evaluate steering: TruthfulQA MC, generation tasks")
    tasks = evaluate.add_subparsers(dest="task", required=True)

    p = tasks.add_parser("truthfulqa-mc", help="TruthfulQA multiple choice by likelihood")
    _common(p, default_strength=0.2)  # evaluation.specs.EVAL_STRENGTH
    p.add_argument("--seed", type=int, default=0, help="seed of the 2-fold split and the fits")
    p.set_defaults(func=honour_quiet(cmd_eval_truthfulqa_mc))

    p = tasks.add_parser("generate", help="generate with each method, save JSONL, score")
    _common(p, default_strength=0.2)  # evaluation.specs.EVAL_STRENGTH
    p.add_argument(
        "--data", default="truthfulqa",
        help="truthfulqa, ultrafeedback, realtoxicityprompts, or a .jsonl/.csv/.txt prompt file",
    )  # fmt: skip
    p.add_argument("--concept", default=None, help="what to steer towards (default: truthfulqa)")
    p.add_argument(
        "--targets", type=float, nargs="+", default=None,
        help="steer to these confidences p in (0, 1) instead of strengths (barrier methods "
        "only): each token moves until logit(p), at most as far as --strength",
    )  # fmt: skip
    p.add_argument("--out", default="generations.jsonl", help="JSONL file, one row per arm")
    add_sampling_options(p, paper=True, max_new_tokens=None)  # the paper's sampling
    p.add_argument("--scorer", default=None, help="Hub id/folder of a classifier or reward model")
    p.add_argument("--scorer-label", default=None, help="label whose probability is the score")
    p.add_argument("--scorer-pairs", action="store_true", help="score (prompt, text) pairs")
    p.add_argument("--scorer-device", default=None, help="default: the model's device")
    p.set_defaults(func=honour_quiet(cmd_eval_generate))

"""The ``eval`` subcommand: ``python -m odesteer_core eval {truthfulqa-mc,generate} ...``.

Follows ``commands.py``: with ``--json`` the last line of standard output is one JSON object, progress
bars go to stderr, and user errors become ``error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse

from odesteer_core.cli.options import (
    add_model_options,
    add_output_options,
    load_model,
    positive_int,
)

__all__ = ["add_eval_parser", "cmd_eval_generate", "cmd_eval_truthfulqa_mc"]

_METHODS_HELP = "comma-separated: none, caa, iti, repe, step_odesteer, odesteer, linear_act"


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
    p.add_argument("--seed", type=int, default=0, help="seed of the 2-fold split and the fits")
    p.add_argument("--batch-size", type=positive_int, default=8, help="rows per forward pass")
    add_output_options(p)


def cmd_eval_truthfulqa_mc(args: argparse.Namespace) -> dict:
    """TruthfulQA MC1/MC2 per method and strength (2-fold protocol)."""
    from odesteer_core.concepts.truthfulqa import load_truthfulqa_questions
    from odesteer_core.evaluation.truthfulqa_mc import (
        check_methods,
        check_strengths,
        evaluate_truthfulqa_mc,
    )

    methods = check_methods(args.methods)  # all checks before the (slow) model load
    strengths = check_strengths(args.strength, name="--strength")
    questions = load_truthfulqa_questions(args.truthfulqa_csv)[: args.limit]
    lm, load_s = load_model(args)
    evaluation = evaluate_truthfulqa_mc(
        lm,
        questions,
        methods=methods,
        strengths=strengths,
        layer=args.layer,
        seed=args.seed,
        steps=args.steps,
        solver=args.solver,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    evaluation.timing["load_s"] = load_s
    if not args.json:
        for note in evaluation.notices:
            print(f"note: {note}")
        print(f"TruthfulQA MC, {len(questions)} questions, 2-fold, layer {evaluation.layer}")
        for entry in evaluation.sweep:
            print(f"strength {entry['strength']:g}")
            for method, r in entry["results"].items():
                print(f"  {method:<14} MC1 {r['mc1']:.3f}  MC2 {r['mc2']:.3f}  MC3 {r['mc3']:.3f}")
    return evaluation.to_dict()


def cmd_eval_generate(args: argparse.Namespace) -> dict:
    """Generate with every method, save JSONL, report distinct-n, perplexity and scores."""
    from odesteer_core.evaluation.generation import GEN_TASKS, evaluate_generation
    from odesteer_core.evaluation.truthfulqa_mc import check_methods, check_strengths
    from odesteer_core.lm.sampling import GenerationSettings

    methods = check_methods(args.methods)
    strengths = check_strengths(args.strength, name="--strength")
    if args.concept is None and args.data != "truthfulqa" and methods != ("none",):
        raise ValueError("name the concept to steer towards: --concept NAME (or FILE)")
    n_new = args.max_new_tokens or (
        GEN_TASKS[args.data].max_new_tokens if args.data in GEN_TASKS else 50
    )
    settings = GenerationSettings(
        max_new_tokens=n_new,
        do_sample=not args.greedy,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    lm, load_s = load_model(args)
    evaluation = evaluate_generation(
        lm,
        args.data,
        concept=args.concept,
        truthfulqa_csv=args.truthfulqa_csv,
        limit=args.limit,
        methods=methods,
        strengths=strengths,
        settings=settings,
        layer=args.layer,
        steps=args.steps,
        solver=args.solver,
        out=args.out,
        scorer=args.scorer,
        scorer_label=args.scorer_label,
        scorer_pairs=args.scorer_pairs,
        scorer_device=args.scorer_device or str(lm.device),
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    evaluation.timing["load_s"] = load_s
    if not args.json:
        for note in evaluation.notices:
            print(f"note: {note}")
        print(f"{len(evaluation.rows)} generations saved to {evaluation.out}")
        for entry in evaluation.sweep:
            print(f"strength {entry['strength']:g}")
            for method, r in entry["results"].items():
                extra = f"  score {r['score']:.3f}" if "score" in r else ""
                print(
                    f"  {method:<14} distinct-2 {r['distinct_2']:.3f}  "
                    f"perplexity {r['perplexity']:.2f}{extra}"
                )
    return evaluation.to_dict()


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``eval truthfulqa-mc`` and ``eval generate`` on the main parser's subparsers."""
    evaluate = sub.add_parser("eval", help="evaluate steering: TruthfulQA MC, generation tasks")
    tasks = evaluate.add_subparsers(dest="task", required=True)

    p = tasks.add_parser("truthfulqa-mc", help="TruthfulQA multiple choice by likelihood")
    _common(p, default_strength=0.2)
    p.set_defaults(func=cmd_eval_truthfulqa_mc)

    p = tasks.add_parser("generate", help="generate with each method, save JSONL, score")
    _common(p, default_strength=0.2)
    p.add_argument(
        "--data", default="truthfulqa",
        help="truthfulqa, ultrafeedback, realtoxicityprompts, or a .jsonl/.csv/.txt prompt file",
    )  # fmt: skip
    p.add_argument("--concept", default=None, help="what to steer towards (default: truthfulqa)")
    p.add_argument("--out", default="generations.jsonl", help="JSONL file, one row per arm")
    p.add_argument("--max-new-tokens", type=positive_int, default=None, help="default: task's")
    p.add_argument("--greedy", action="store_true", help="greedy instead of the paper's sampling")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--repetition-penalty", type=float, default=1.1)
    p.add_argument("--scorer", default=None, help="Hub id/folder of a classifier or reward model")
    p.add_argument("--scorer-label", default=None, help="label whose probability is the score")
    p.add_argument("--scorer-pairs", action="store_true", help="score (prompt, text) pairs")
    p.add_argument("--scorer-device", default=None, help="default: the model's device")
    p.set_defaults(func=cmd_eval_generate)

"""The ``reproduce`` subcommand: the paper's tables, resumable, one process or many.

    python -m odesteer_core reproduce --model M --out DIR [--tasks ...] [--methods ...]
    torchrun --nproc_per_node K -m odesteer_core reproduce ...   (same numbers, K times faster)

Every option, data file, judge and the output folder are checked before the model loads; a user
error prints ``error: ...`` and exits with status 2 (``commands.main``).
"""

from __future__ import annotations

import argparse

from odesteer_core.cli.options import add_model_options, add_output_options, honour_quiet
from odesteer_core.cli.options import positive_int as _count

__all__ = ["add_reproduce_parser", "cmd_reproduce"]

_RUN = {  # RunConfig field: option dest
    "tasks": "tasks", "methods": "methods", "strengths": "strengths", "targets": "targets",
    "limit": "limit", "fit_limit": "fit_limit", "seed": "seed", "layer": "layer",
    "steps": "steps", "solver": "solver", "gen_batch_size": "gen_batch_size",
    "max_new_tokens": "max_new_tokens",
}  # fmt: skip
_FILES = ("truthfulqa_csv", "ultrafeedback_train", "ultrafeedback_test", "jigsaw_csv", "rtp_file")
_JUDGES = ("truth", "info", "reward", "toxicity", "perplexity")


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _devices(values: list[str]) -> dict:
    devices = {}
    for value in values or []:
        name, _, device = value.rpartition("=")
        devices[name or "*"] = device
    return devices


def _flag(field: str, options: dict) -> str:
    return "--" + options.get(field, field).replace("_", "-")


def build_job(args: argparse.Namespace):
    """The ``Reproduction`` the arguments describe (every value checked)."""
    from odesteer_core.evaluation.reproduce import (
        ALL_METHODS,
        DataFiles,
        JudgeConfig,
        ModelOptions,
        Reproduction,
        RunConfig,
    )
    from odesteer_core.evaluation.specs import EVAL_STRENGTH, SettingError

    run = {f: getattr(args, d) for f, d in _RUN.items()}
    run["tasks"] = _names(args.tasks)
    run["methods"] = _names(args.methods) if args.methods else ALL_METHODS
    if args.targets is None and args.strengths is None:
        run["strengths"] = (EVAL_STRENGTH,)
    if args.targets is not None:
        run["strengths"] = None
    judges = {name: getattr(args, f"{name}_judge") for name in _JUDGES}
    for name in args.no_judge or []:
        if name not in judges:
            raise ValueError(f"--no-judge {name!r}: use one of {', '.join(_JUDGES)}")
        judges[name] = None
    ppl = None if args.rtp_ppl_model == "none" else args.rtp_ppl_model
    try:
        files = DataFiles(**{f: getattr(args, f) for f in _FILES}, rtp_ppl_model=ppl)
        config = RunConfig(model=args.model, **run)
        judge_config = JudgeConfig(
            **judges, toxicity_label=args.toxicity_label, devices=_devices(args.judge_device),
            batch_size=args.judge_batch_size,
        )  # fmt: skip
    except SettingError as err:
        flag = _flag(err.field, _RUN)
        raise ValueError(f"{flag}: {err}" if not str(err).startswith("--") else str(err)) from None
    model = ModelOptions(
        args.model, revision=args.revision, device=args.device, dtype=args.dtype,
        device_map=args.device_map, trust_remote_code=args.trust_remote_code,
    )  # fmt: skip
    return Reproduction(model, config, args.out, files, judge_config, args.force, not args.quiet)


def cmd_reproduce(args: argparse.Namespace) -> dict:
    """Run or resume the reproduction; print the tables (unless ``--json``)."""
    from odesteer_core.evaluation.reproduce import reproduce
    from odesteer_core.evaluation.reproduce.store import RESULTS_JSON, RESULTS_MD

    summary = reproduce(build_job(args))
    if not args.json:
        for note in summary["notices"]:
            print(f"note: {note}")
        print(f"results in {args.out}: {RESULTS_JSON} and {RESULTS_MD} (the tables)")
    return {k: v for k, v in summary.items() if k != "rows"} | {"n_rows": len(summary["rows"])}


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``reproduce`` on the main parser's subparsers."""
    p = sub.add_parser("reproduce", help="the paper's tables: every task, method and setting")
    add_model_options(p)
    p.add_argument("--device-map", default=None, help="auto: spread a large model over GPUs")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--force", action="store_true", help="reuse a folder of another model")
    p.add_argument(
        "--tasks", default="truthfulqa-mc,truthfulqa-gen,ultrafeedback,toxicity",
        help="comma-separated: truthfulqa-mc, truthfulqa-gen, ultrafeedback, toxicity",
    )  # fmt: skip
    p.add_argument("--methods", default=None, help="comma-separated (default: none + every method)")
    sweep = p.add_mutually_exclusive_group()
    sweep.add_argument("--strengths", type=float, nargs="+", default=None, help="relative (0.2)")
    sweep.add_argument("--targets", type=float, nargs="+", default=None, help="confidences p")
    p.add_argument("--limit", type=_count, default=None, help="first N test items per split")
    p.add_argument("--fit-limit", type=_count, default=None, help="first N fit examples")
    p.add_argument("--seed", type=int, default=42, help="the paper's 42")
    p.add_argument("--layer", type=int, default=None, help="decoder layer (default ~40%% depth)")
    p.add_argument("--steps", type=int, default=None, help="ODE methods' solver steps (10)")
    p.add_argument("--solver", default=None, help="euler, midpoint, rk4")
    p.add_argument("--gen-batch-size", type=_count, default=8, help="prompts per batch")
    p.add_argument("--max-new-tokens", type=_count, default=None, help="default: the task's")
    data = p.add_argument_group("data (default: the Hugging Face Hub)")
    data.add_argument("--truthfulqa-csv", default=None, help="TruthfulQA.csv")
    data.add_argument("--ultrafeedback-train", default=None, help="JSONL/CSV of train_prefs")
    data.add_argument("--ultrafeedback-test", default=None, help="JSONL/CSV of test_prefs")
    data.add_argument("--jigsaw-csv", default=None, help="Kaggle Jigsaw all_data.csv")
    data.add_argument("--rtp-file", default=None, help="JSONL/CSV of RealToxicityPrompts")
    data.add_argument("--rtp-ppl-model", default="openai-community/gpt2", help="or none")
    judges = p.add_argument_group("judges (default: the paper's)")
    judges.add_argument("--truth-judge", default="allenai/truthfulqa-truth-judge-llama2-7B")
    judges.add_argument("--info-judge", default="allenai/truthfulqa-info-judge-llama2-7B")
    judges.add_argument("--reward-judge", default="Skywork/Skywork-Reward-V2-Llama-3.1-8B")
    judges.add_argument(
        "--toxicity-judge", default="s-nlp/roberta_toxicity_classifier",
        help="a classifier, or 'perspective' (needs $PERSPECTIVE_API_KEY)",
    )  # fmt: skip
    judges.add_argument("--toxicity-label", default="toxic")
    judges.add_argument("--perplexity-judge", default="openai-community/gpt2-xl")
    judges.add_argument("--no-judge", action="append", help="skip a judge (repeatable)")
    judges.add_argument(
        "--judge-device", action="append", help="DEVICE, or NAME=DEVICE (repeatable)"
    )
    judges.add_argument("--judge-batch-size", type=_count, default=8)
    add_output_options(p)
    p.set_defaults(func=honour_quiet(cmd_reproduce))

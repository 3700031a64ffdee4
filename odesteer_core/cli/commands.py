"""Command line: ``python -m odesteer_core {concepts,fit,compare,smoke,eval,reproduce} ...``.

With ``--json`` the last line of standard output is one JSON object; progress goes to stderr.
User errors print one line ``error: ...`` and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import deque
from pathlib import Path

from odesteer_core.cli.eval_commands import add_eval_parser
from odesteer_core.cli.options import add_model_options, add_output_options, load_model
from odesteer_core.cli.reproduce_command import add_reproduce_parser

__all__ = ["main"]


def _concept(args):
    from odesteer_core.concepts.sources import load_concept

    return load_concept(args.concept, truthfulqa_csv=args.truthfulqa_csv, split=args.split)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    p.add_argument("--concept", required=True, help="built-in name, truthfulqa, or a file")
    p.add_argument("--truthfulqa-csv", default=None, help="local TruthfulQA CSV (offline)")
    p.add_argument("--split", default="all", choices=("all", "train", "test"))
    p.add_argument("--layer", type=int, default=None, help="decoder layer (default ~40%% depth)")
    add_output_options(p)


def cmd_concepts(args) -> dict:
    from odesteer_core.concepts.sources import list_concepts

    rows = list_concepts()
    if not args.json:
        for r in rows:
            sizes = f"{r['n_positive']}+{r['n_negative']}" if r["n_positive"] else "on demand"
            print(f"{r['name']:<12} {sizes:<10} {r['description']}")
    return {"concepts": rows}


def cmd_layer_sweep(args) -> dict:
    """``fit --layers``: the concept's barrier at several layers, held-out quality per layer."""
    from odesteer_core.pipeline.layer_sweep import parse_layers, sweep_layers
    from odesteer_core.view.layer_plot import layer_sweep_figure

    concept = _concept(args)  # every check before the slow model load
    if args.plot and not args.plot.endswith(".html"):
        raise ValueError(f"--plot must name an .html file, got {args.plot!r}")
    lm, load_s = load_model(args)
    layers = parse_layers(args.layers, lm.n_layers)
    sweep = sweep_layers(lm, concept, layers, progress=not args.quiet)
    sweep.timing["load_s"] = load_s
    if args.plot:
        Path(args.plot).write_text(layer_sweep_figure(sweep).to_html(include_plotlyjs="cdn"))
    if not args.json:
        print(sweep.table())
        print(f"best layer by held-out log-loss: {sweep.best()}")
    return sweep.to_dict()


def cmd_fit(args) -> dict:
    if args.layers is not None:
        return cmd_layer_sweep(args)
    from odesteer_core.cli.options import check_layer_option, check_out_option
    from odesteer_core.method.persistence import save_steerer
    from odesteer_core.method.registry import STEERERS
    from odesteer_core.pipeline import fit_concept

    if args.method not in STEERERS:  # every check, and the concept, before the slow model load
        raise ValueError(f"unknown --method {args.method!r}; valid: {', '.join(sorted(STEERERS))}")
    check_layer_option(args.layer)
    if args.out is None:
        raise ValueError("--out is required: the .safetensors file to write (or sweep --layers)")
    check_out_option(args.out)
    concept = _concept(args)
    lm, load_s = load_model(args)
    t0 = time.perf_counter()
    fitted = fit_concept(lm, concept, layer=args.layer, methods=(), progress=not args.quiet)
    steerer = fitted.steerer(args.method)
    path = save_steerer(steerer, args.out)
    summary = {
        "out": str(path),
        "method": args.method,
        "layer": fitted.layer,
        "n_positive": len(fitted.pos),
        "n_negative": len(fitted.neg),
        "median_norm": steerer.median_norm_,
        "timing": {"load_s": load_s, "fit_s": time.perf_counter() - t0},
    }
    report = getattr(steerer, "report_", None)  # barrier steerers: held-out quality
    if report is not None:
        summary["calibration"] = report.to_dict()
    if not args.json:
        print(f"saved {args.method} (layer {fitted.layer}) to {path}")
        if report is not None:
            print(f"barrier: {report.summary()}")
            for note in report.notes:
                print(f"  note: {note}")
    return summary


def compare_request(args) -> tuple:
    """The command's settings, checked with the app's ranges before anything loads."""
    from odesteer_core.cli.options import sampling_values
    from odesteer_core.pipeline.request import CompareRequest

    values = {"prompt": args.prompt, "one_step": args.one_step, "positions": args.positions}
    values.update(sampling_values(args))
    optional = {"strength": args.strength, "steps": args.steps, "solver": args.solver}
    optional["target"] = args.target
    values.update({k: v for k, v in optional.items() if v is not None})
    if args.layer is not None:
        values["layer"] = args.layer
    try:
        if args.target is not None and (args.steps is not None or args.solver is not None):
            raise ValueError("--target decides how far ODESteer moves: drop --steps/--solver")
        request = CompareRequest.from_values(values)
        arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
        steering = dataclasses.replace(request.steering, T=args.T, arms=arms)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{err} (see --help)") from None
    return steering, request.generation


def cmd_compare(args) -> dict:
    from odesteer_core.pipeline import compare, fit_concept

    steering, settings = compare_request(args)  # all checks before the (slow) model load
    lm, load_s = load_model(args)
    t0 = time.perf_counter()
    fitted = fit_concept(lm, _concept(args), layer=args.layer, progress=not args.quiet)
    if "one_step" in steering.arms:
        fitted.steerer(steering.one_step)
    fit_s = time.perf_counter() - t0
    stream = compare(lm, fitted, args.prompt, steering, settings)
    comparison = deque(stream, maxlen=1)[0]  # the stream yields one growing object: keep the last
    comparison.timing.update({"load_s": load_s, "fit_s": fit_s})
    if args.save_trajectories:
        Path(args.save_trajectories).write_text(json.dumps(comparison.to_dict(include_paths=True)))
    if not args.json:
        for note in comparison.notices:
            print(f"note: {note}")
        for arm in comparison.arms:
            label = arm.name if arm.method is None else f"{arm.name} ({arm.method}, T={arm.T:.4g})"
            print(f"--- {label}: mean barrier {arm.mean_barrier:+.3f}\n{arm.text}\n")
    return comparison.to_dict()


def cmd_smoke(args) -> dict:
    """Fit every method on synthetic data and run a short comparison on the offline model."""
    import torch

    from odesteer_core.method.registry import STEERERS, make_steerer
    from odesteer_core.method.strength import relative_to_T

    g = torch.Generator().manual_seed(0)
    pos = torch.randn(64, 16, generator=g) + 1.0
    neg = torch.randn(64, 16, generator=g) - 1.0
    moved = {}
    for name in STEERERS:
        s = make_steerer(name, n_components=256) if "odesteer" in name else make_steerer(name)
        s.fit(pos, neg)
        out = s.steer(neg[:4], relative_to_T(s, 0.3))
        moved[name] = float((out - neg[:4]).norm(dim=1).mean())
    args.model, args.concept, args.prompt = "tiny-random-llama", "polite", "Say hello."
    result = cmd_compare(args)
    print(
        "smoke: steering and the offline comparison ran (outputs are meaningless).", file=sys.stderr
    )
    return {"moved": moved, "compare": result}


def build_parser() -> argparse.ArgumentParser:
    from odesteer_core.cli.options import add_sampling_options, honour_quiet

    parser = argparse.ArgumentParser(
        prog="python -m odesteer_core", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("concepts", help="list the built-in concepts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_concepts)

    p = sub.add_parser("fit", help="fit a steerer on a concept and save it")
    _add_model_args(p)
    p.add_argument("--method", default="odesteer", help="odesteer, caa, iti, repe, ...")
    p.add_argument(
        "--out", default=None, help="output .safetensors file (required without --layers)"
    )
    p.add_argument(
        "--layers", default=None,
        help="sweep layers instead: 'all' or e.g. 4,8,12; prints held-out quality per layer",
    )  # fmt: skip
    p.add_argument("--plot", default=None, help="with --layers: write the figure to this .html")
    p.set_defaults(func=honour_quiet(cmd_fit))

    for name, helptext in (("compare", "generate the arms side by side"), ("smoke", "self-check")):
        p = sub.add_parser(name, help=helptext)
        if name == "compare":
            _add_model_args(p)
            p.add_argument("--prompt", required=True)
        else:
            add_output_options(p)
            for flag in ("--revision", "--device", "--dtype", "--truthfulqa-csv", "--layer"):
                p.add_argument(flag, default=None, type=int if flag == "--layer" else str)
            p.set_defaults(trust_remote_code=False, split="all")
        group = p.add_mutually_exclusive_group()
        group.add_argument("--strength", type=float, default=None, help="relative (default 0.3)")
        group.add_argument("--T", type=float, default=None, help="absolute horizon, all arms")
        p.add_argument(
            "--target",
            type=float,
            default=None,
            help="steer the ODESteer arm to this confidence p in (0, 1): each token moves only "
            "until its barrier reaches logit(p); the one-step arm keeps --strength",
        )
        p.add_argument("--steps", type=int, default=None, help="ODESteer solver steps (10)")
        p.add_argument("--solver", default=None, help="euler, midpoint, rk4")
        p.add_argument("--one-step", default="caa", help="caa, iti, repe, step_odesteer")
        add_sampling_options(p, paper=False, max_new_tokens=64 if name == "compare" else 8)
        p.add_argument("--arms", default="none,one_step,odesteer")
        p.add_argument("--positions", default="last", choices=("last", "from_prompt_end"))
        p.add_argument("--save-trajectories", default=None, help="JSON file with every path")
        p.set_defaults(func=honour_quiet(cmd_compare if name == "compare" else cmd_smoke))
    add_eval_parser(sub)
    add_reproduce_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    return 0

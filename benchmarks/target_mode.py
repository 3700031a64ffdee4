"""Target-confidence steering vs fixed horizons on the synthetic problems of synthetic_quality.py.

For each configuration and regime: fit the default ``odesteer`` (selected barrier), take the held-out
negatives, and compare ``steer_to_target(x, p)`` with ``steer(x, T)`` over a grid of fixed
horizons. Printed per problem: rows already above the target (must be returned bit for bit), the
share of the others that reach it (goal >= 95 %), the mean distance moved, and, for every fixed
horizon reaching at least the same share of ``h >= logit(p)``, its mean distance (goal: target
mode moves less than every such horizon).

Usage: python benchmarks/target_mode.py [--target 0.9] [--configs linear,xor,...] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic_quality as sq  # noqa: E402

import odesteer_core as oc  # noqa: E402

HORIZONS = [0.25 * 1.32**k for k in range(16)]  # the distances synthetic_quality.py sweeps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--configs", default="linear,xor,nested,ring")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    level = math.log(args.target / (1 - args.target))
    print(
        f"target p = {args.target} (h >= {level:.3f}); {sq.N_TEST} held-out negatives + 100 positives\n"
    )
    print(
        "| config | regime | above (unchanged) | reached | target: mean distance | "
        "best fixed T reaching as many: mean distance | ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    ok = True
    for config in args.configs.split(","):
        for regime in sq.REGIMES:
            problem = sq.make_problem(config, regime, args.seed)
            s = oc.make_steerer("odesteer", seed=args.seed).fit(problem.pos, problem.neg)
            x = torch.cat([problem.test, problem.pos[:100]])  # 100 positives: mostly above
            t0 = time.perf_counter()
            result = s.steer_to_target(x, args.target)
            seconds = time.perf_counter() - t0
            above = result.steps == 0
            above &= s.barrier(x) >= level
            unchanged = bool(torch.equal(result.x[above], x[above]))
            rest = ~above
            reached = float(result.reached[rest].float().mean()) if rest.any() else 1.0
            share_all = float(result.reached.float().mean())
            ours = float(result.distance.mean())
            fixed = []
            for T in HORIZONS:
                out = s.steer(x, T)
                if float((s.barrier(out) >= level).float().mean()) >= share_all:
                    fixed.append(float((out - x).norm(dim=1).mean()))
            best = min(fixed) if fixed else math.nan
            ok &= unchanged and reached >= 0.95 and (not fixed or ours < best)
            print(
                f"| {config} | {regime} | {int(above.sum())} ({'yes' if unchanged else 'NO'}) | "
                f"{reached:.3f} | {ours:.3f} | {best:.3f} | {ours / best:.2f} |"
                f"  <!-- {seconds:.2f} s; {s.report_.summary()} -->"
            )
    print(f"\n{'PASS' if ok else 'FAIL'}: unchanged above, >= 95 % reached, less movement")
    return 0


if __name__ == "__main__":
    sys.exit(main())

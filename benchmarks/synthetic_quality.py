"""Steering quality on Gaussian mixtures with exact densities: the Bayes rule is the judge.

Configurations (signal in the plane of the first two coordinates, isotropic noise elsewhere):
  linear      one positive and one negative component, opposite along e0
  xor         positives at (+c,+c), (-c,-c); negatives at (+c,-c), (-c,+c)
  multimodal  three positive and three negative components interleaved on a circle
Regimes: "small" shared mean (|m| = 0.5) and "dominant" shared mean (|m| = 40, carried by a few
massive coordinates, like real LLM residual streams).

Score per method, at its best strength (swept): the share of held-out negatives that, once
steered, land inside the positive cloud: on the positive side of the Bayes rule AND with a
positive log-density at least the 5th percentile of fresh positives' log-densities.

Usage: python benchmarks/synthetic_quality.py [--methods caa,odesteer,...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
import odesteer_core as oc  # noqa: E402

D = 32
SIGMA = 0.5
N_TRAIN, N_TEST = 500, 500
DISTANCES = [0.25 * 1.15**k for k in range(30)]  # displacement swept, in absolute units
METHODS = [
    "caa",
    "iti",
    "repe",
    "linear_act",
    "step_odesteer",
    "odesteer",
    "odesteer_paper",
    "odesteer:degree=3",
]


def _plane(points: list[tuple[float, float]]) -> torch.Tensor:
    centres = torch.zeros(len(points), D)
    centres[:, :2] = torch.tensor(points)
    return centres


def configurations() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    c, r = 2.0, 3.0
    angles = [2 * math.pi * k / 6 for k in range(6)]
    ring = [(r * math.cos(a), r * math.sin(a)) for a in angles]
    return {
        "linear": (_plane([(1.5, 0.0)]), _plane([(-1.5, 0.0)])),
        "xor": (_plane([(c, c), (-c, -c)]), _plane([(c, -c), (-c, c)])),
        "multimodal": (_plane(ring[0::2]), _plane(ring[1::2])),
    }


def shared_mean(regime: str, g: torch.Generator) -> torch.Tensor:
    if regime == "small":
        m = torch.randn(D, generator=g)
        return 0.5 * m / m.norm()
    m = 0.3 * torch.randn(D, generator=g)
    m[[5, 11, 23]] = torch.tensor([30.0, -20.0, 15.0])  # a few massive dimensions
    return 40.0 * m / m.norm()


class Mixture:
    """Equal-weight isotropic Gaussian mixture with exact log-density."""

    def __init__(self, centres: torch.Tensor):
        self.centres = centres  # (K, D)

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        which = torch.randint(0, len(self.centres), (n,), generator=g)
        return self.centres[which] + SIGMA * torch.randn(n, D, generator=g)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(x.double(), self.centres.double()) ** 2  # (n, K)
        log_norm = -0.5 * D * math.log(2 * math.pi * SIGMA**2) - math.log(len(self.centres))
        return torch.logsumexp(-sq / (2 * SIGMA**2), dim=1) + log_norm


def evaluate(method: str, config: str, regime: str, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    pos_c, neg_c = configurations()[config]
    m = shared_mean(regime, g)
    p_pos, p_neg = Mixture(pos_c + m), Mixture(neg_c + m)
    pos, neg = p_pos.sample(N_TRAIN, g), p_neg.sample(N_TRAIN, g)
    test = p_neg.sample(N_TEST, g)
    typical = torch.quantile(p_pos.log_prob(p_pos.sample(2000, g)), 0.05)

    def inside(x: torch.Tensor) -> float:
        lp = p_pos.log_prob(x)
        return float(((lp > p_neg.log_prob(x)) & (lp >= typical)).double().mean())

    name, _, option = method.partition(":")  # e.g. "odesteer:degree=3"
    options = {k: json.loads(v) for k, v in (o.split("=") for o in option.split(",") if o)}
    t0 = time.perf_counter()
    s = oc.make_steerer(name, seed=seed, **options).fit(pos, neg)
    fit_s = time.perf_counter() - t0
    scores = [
        inside(s.steer(test, oc.relative_to_T(s, dist / s.median_norm_))) for dist in DISTANCES
    ]
    best = max(range(len(scores)), key=scores.__getitem__)
    return {"share": scores[best], "distance": DISTANCES[best], "fit_s": fit_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=";".join(METHODS), help="';'-separated")
    parser.add_argument("--configs", default="linear,xor,multimodal")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    methods = args.methods.split(";")
    rows = []
    print(
        f"d={D}, sigma={SIGMA}, train {N_TRAIN}+{N_TRAIN}, test {N_TEST} negatives; torch {torch.__version__}"
    )
    print("share of steered negatives inside the positive cloud, at each method's best distance")
    header = f"{'config':<11} {'regime':<9}" + "".join(f"{m:>18}" for m in methods)
    print(header)
    for config in args.configs.split(","):
        for regime in ("small", "dominant"):
            results = {m: evaluate(m, config, regime) for m in methods}
            rows.append({"config": config, "regime": regime, "results": results})
            cells = "".join(f"{r['share']:>11.3f} @{r['distance']:<5.2f}" for r in results.values())
            print(f"{config:<11} {regime:<9}{cells}", flush=True)
    print("targets (default odesteer): xor >= 0.65 and >= caa + 0.5 in both regimes; linear >= caa")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

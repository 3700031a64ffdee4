"""Steering latency of default ODESteer on CPU: what one generation step pays at the hooked layer.

Measured, on a batch of 3 rows with d = 4096 (the app's batch; n_components = 8000), fitted on
synthetic 4096-d activations (``--n-fit`` per class, LLM-like: dominant shared mean with a few
massive coordinates, XOR-ish class signal):

  odesteer steer        ``s.steer(x, T)``: 10 Euler steps (the default), one call per position
    same, FFT path      the same steerer with the degree-2 quadratic form switched off (the path
                        of models wider than ``TensorSketch.quadratic_max_d``: 2048 on CPU, 8192
                        on GPUs)
  caa step              ``caa.steer(x, T)``: one step of a constant field (the cheapest baseline)
  step_odesteer         one Euler step of the same field (a fitted ``step_odesteer``)
  odesteer rk4          ``s.steer(x, T, solver="rk4")``: 10 RK4 steps = 40 field evaluations
  odesteer trajectory   ``s.trajectory(x, T)``: the whole path (11, 3, d), which the app records
  trajectory + barrier  ``s.trajectory_with_barrier(x, T)``: the path and h at its 33 points, what
                        the generation hook calls (h comes with each step's field evaluation)
  field v(x)            one evaluation of the velocity field (``s.velocity``)
  barrier path 11 / 33  ``s.barrier`` on the 11 points of one row's path / on the whole batch's path

Each figure is the median over ``--repeats`` calls after ``--warmup`` calls, the cases timed
round-robin. Printed: ms per call
and the ratio to one CAA step.

Target: a steer call costs about ``steps`` field evaluations and nothing more (overhead of
``steer`` over 10 x v(x) within 20 %), and a field evaluation does no avoidable work (no
per-call recomputation of quantities fixed at fit time, no float64).

Usage: python benchmarks/steer_speed.py [--repeats 200] [--warmup 10] [--d 4096] [--batch 3]
       [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
import odesteer_core as oc  # noqa: E402


def synthetic(d: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of LLM-like activations: shared mean with massive dims, XOR signal in a plane."""
    g = torch.Generator().manual_seed(seed)
    mean = 0.5 * torch.randn(d, generator=g)
    mean[torch.randperm(d, generator=g)[:4]] = torch.tensor([60.0, -40.0, 30.0, 25.0])
    basis, _ = torch.linalg.qr(torch.randn(d, 2, generator=g))
    u, v = basis.T

    def draw(label: int) -> torch.Tensor:
        s1 = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1
        s2 = s1 * (1.0 if label else -1.0)
        x = mean + torch.randn(n, d, generator=g)
        return (
            x
            + (6.0 * s1 + torch.randn(n, generator=g))[:, None] * u
            + (6.0 * s2 + torch.randn(n, generator=g))[:, None] * v
        )

    return draw(1), draw(0)


def median_ms(cases: dict, repeats: int, warmup: int, sync=lambda: None) -> dict[str, float]:
    """Median ms per call of each case, timed round-robin so that machine noise hits all alike.

    ``sync`` waits for queued GPU work (``torch.cuda.synchronize``) before each clock read.
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--n-fit", type=int, default=300, help="fit samples per class")
    parser.add_argument("--strength", type=float, default=0.3, help="relative strength")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()

    pos, neg = (t.to(args.device) for t in synthetic(args.d, args.n_fit))
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    t0 = time.perf_counter()
    ode = oc.make_steerer("odesteer", seed=0).fit(pos, neg)
    fit_s = time.perf_counter() - t0
    # The same fitted steerer forced onto the FFT path (the one of wide models).
    fft = copy.deepcopy(ode)
    fft.barrier_.feature_map.quadratic_max_d = fft.barrier_.feature_map.quadratic_max_d_gpu = 0
    step = oc.make_steerer("step_odesteer", seed=0).fit(pos, neg)
    caa = oc.make_steerer("caa").fit(pos, neg)
    x = synthetic(args.d, args.batch, seed=1)[1].to(args.device)  # fresh negatives
    T = oc.relative_to_T(ode, args.strength)
    T_caa = oc.relative_to_T(caa, args.strength)
    path = ode.trajectory(x, T)

    cases = {
        "caa step": lambda: caa.steer(x, T_caa),
        "odesteer steer (10 euler)": lambda: ode.steer(x, T),
        "  same, FFT path": lambda: fft.steer(x, T),
        "step_odesteer": lambda: step.steer(x, T),
        "odesteer rk4 (10 steps)": lambda: ode.steer(x, T, solver="rk4"),
        "odesteer trajectory": lambda: ode.trajectory(x, T),
        "trajectory + barrier": lambda: ode.trajectory_with_barrier(x, T),
        "field v(x)": lambda: ode.velocity(x),
        "barrier path 11 points": lambda: ode.barrier(path[:, 0]),
        f"barrier path {path.shape[0] * path.shape[1]} points": lambda: ode.barrier(
            path.reshape(-1, args.d)
        ),
    }
    print(
        f"steer speed on {args.device}: batch {args.batch} x d={args.d}, n_components=8000, "
        "default odesteer "
        f"(fit on {args.n_fit}+{args.n_fit} in {fit_s:.2f} s, {ode.barrier_.n_iter_} iters); "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"median of {args.repeats} after {args.warmup} warm-up calls"
    )
    results = median_ms(cases, args.repeats, args.warmup, sync)
    base = results["caa step"]
    print(f"{'call':<28}{'ms/call':>10}{'x caa step':>12}")
    print("-" * 50)
    for name, ms in results.items():
        print(f"{name:<28}{ms:>10.3f}{ms / base:>12.1f}")
    overhead = results["odesteer steer (10 euler)"] / (10 * results["field v(x)"]) - 1
    print(
        f"steer overhead over 10 x v(x): {100 * overhead:+.1f}% "
        f"(target within 20 %: {'PASS' if overhead <= 0.2 else 'FAIL'})"
    )


if __name__ == "__main__":
    main()

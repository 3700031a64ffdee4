"""ODESteer's flow against its arithmetic floor: batch 3, 10 Euler steps, d = 256 and 768, CPU.

What one generated token pays at the hooked layer for the ODESteer arm, side by side in one run
(cases timed round-robin, medians over ``--repeats``):

  floor             ten (3 x (d + 1)) @ ((d + 1) x (d + 1)) matrix products: the arithmetic
                    the quadratic barrier needs, nothing else, with the faster of MKL's kernel
                    (``torch.mm``) and oneDNN's (``kernels.linear``), both shown
  flow              ``s.flow(x, T, 10, "euler")``: the lean loop (``method/flows.py``), no checks
  steer             ``s.steer(x, T)``: the public call (argument checks, dtype round trip)
  path + barrier    ``s.trajectory_with_barrier(x, T)``: what the generation hook records
  generic Euler     the same 10 steps through the generic solver and the feature map's field
                    (``ode.integrate`` with ``s.velocity``): the per-step path before the lean loop

Targets (issue "ODESteer at the speed of its arithmetic"): steer <= 0.6 ms at d = 256 and
<= 1.2 ms at d = 768 on the project's 2-core CPU. Then a profile of ``steer`` at each d: where
the time goes, per operator.

Usage: python benchmarks/flow_speed.py [--repeats 300] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
import odesteer_core as oc  # noqa: E402
from odesteer_core.method.kernels import linear  # noqa: E402
from odesteer_core.method.ode import integrate  # noqa: E402

TARGETS_MS = {256: 0.6, 768: 1.2}


def synthetic(d: int, n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """LLM-like clouds: a dominant shared mean, the classes apart in a 2-D XOR pattern."""
    g = torch.Generator().manual_seed(seed)
    mean = 0.5 * torch.randn(d, generator=g)
    mean[:4] = torch.tensor([60.0, -40.0, 30.0, 25.0])
    signs = torch.randint(0, 2, (2, n, 2), generator=g).float() * 2 - 1
    pos = mean + torch.randn(n, d, generator=g)
    neg = mean + torch.randn(n, d, generator=g)
    pos[:, 4:6] += 3.0 * torch.stack([signs[0, :, 0], signs[0, :, 0]], 1)
    neg[:, 4:6] += 3.0 * torch.stack([signs[1, :, 0], -signs[1, :, 0]], 1)
    return pos, neg


def time_cases(cases: dict, repeats: int, warmup: int = 10) -> dict[str, float]:
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(v) for name, v in times.items()}


def profile(fn, rows: int = 8) -> str:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(5):
        fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(50):
            fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {date.today()}; batch 3, 10 Euler steps, "
        f"median of {args.repeats}\n"
    )
    print(
        "| d | floor: MKL (ms) | oneDNN | flow | steer | path + barrier | generic Euler "
        "| steer / floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    for d in (256, 768):
        pos, neg = synthetic(d)
        s = oc.make_steerer("odesteer", seed=0, select=False).fit(pos, neg)  # degree-2 sketch
        x = neg[:3].clone()
        T = oc.relative_to_T(s, 0.3)
        M = s.barrier_.quadratic().M
        y = torch.randn(3, d + 1)

        def floor_mkl(y=y, M=M):
            for _ in range(10):
                torch.mm(y, M)

        def floor_onednn(y=y, M=M):
            for _ in range(10):
                linear(y, M)  # M is symmetric: y M^T = y M

        cases = {
            "floor: MKL": floor_mkl,
            "floor: oneDNN": floor_onednn,
            "flow": lambda s=s, x=x, T=T: s.flow(x, T, 10, "euler"),
            "steer": lambda s=s, x=x, T=T: s.steer(x, T),
            "path + barrier": lambda s=s, x=x, T=T: s.trajectory_with_barrier(x, T),
            "generic Euler": lambda s=s, x=x, T=T: integrate(
                s.velocity, x, T, steps=10, solver="euler"
            ),
        }
        ms = time_cases(cases, args.repeats)
        ms["floor"] = min(ms["floor: MKL"], ms["floor: oneDNN"])
        results[d] = (ms, s, x, T)
        print(
            f"| {d} | {ms['floor: MKL']:.3f} | {ms['floor: oneDNN']:.3f} | {ms['flow']:.3f} | "
            f"{ms['steer']:.3f} | "
            f"{ms['path + barrier']:.3f} | {ms['generic Euler']:.3f} | "
            f"{ms['steer'] / ms['floor']:.1f}x |"
        )
    print()
    for d, (ms, *_) in results.items():
        verdict = "met" if ms["steer"] <= TARGETS_MS[d] else "NOT met"
        print(f"d = {d}: steer {ms['steer']:.3f} ms, target <= {TARGETS_MS[d]} ms: {verdict}")
    if not args.no_profile:
        for d, (_, s, x, T) in results.items():
            print(f"\nprofile of steer at d = {d} (50 calls):")
            print(profile(lambda s=s, x=x, T=T: s.steer(x, T)))


if __name__ == "__main__":
    main()

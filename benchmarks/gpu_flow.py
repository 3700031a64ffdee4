"""The lean ODESteer flow on a GPU: eager kernel launches against one CUDA graph replay.

On a GPU each operator of the Euler loop (``odesteer_core/method/flows.py``: seven per step) is a
kernel launch of a few microseconds, while its arithmetic at batch 1-3 is far less. A CUDA graph
records the whole loop once per (batch, steps) and replays it with one launch. For a graph the
step length must live on the device: here ``dt`` is a 0-d tensor and each step multiplies by
``dt / |u|`` (one operator more than the eager loop, which passes ``dt`` as a Python number).

Cases, per call, batch ``--batch`` (and 1), 10 Euler steps, default ODESteer (degree-2 sketch, its
exact quadratic form), fitted on synthetic LLM-like activations of width ``--d``:

  floor        ten (B x (d + 1)) @ ((d + 1) x (d + 1)) products, nothing else
  flow         ``s.flow(x, T, 10, "euler")``: the eager lean loop
  steer        ``s.steer(x, T)``: the public call (argument checks, one host sync)
  graph        copy ``x`` and ``dt`` into the graph's inputs, replay (CUDA only)
  compiled     ``torch.compile(mode="reduce-overhead")`` of the same loop written without
               ``out=`` and in-place operators (``functional_flow``; ``--compile``; the compile
               time is printed)

It also checks that the device-``dt`` loop (run eagerly, and replayed) gives the lean flow's path
to float tolerance, and exits non-zero otherwise. On CPU (``--device cpu``, a dry run of the same
code) only the eager cases and that check run.

Usage: python benchmarks/gpu_flow.py [--device cuda] [--d 4096] [--batch 3] [--repeats 200]
       [--compile]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
from flow_speed import synthetic  # noqa: E402  (the benchmarks' folder is the script's)
from steer_speed import median_ms  # noqa: E402

import odesteer_core as oc  # noqa: E402
from odesteer_core.method.flows import QuadraticBarrier, quadratic_euler_flow  # noqa: E402

STEPS = 10


def device_dt_flow(q: QuadraticBarrier, x: torch.Tensor, dt: torch.Tensor, steps: int):
    """``quadratic_euler_flow(q, x, T, steps)[0]`` with ``dt = T / steps`` a 0-d device tensor."""
    d, B = q.d, x.shape[0]
    ext = x.new_empty(steps + 1, B, d + 1)
    Y = ext[:, :, :d]
    ys = Y.unbind(0)
    y0 = torch.sub(x, q.mean, out=ys[0])
    ticks = torch.arange(steps + 1, dtype=x.dtype, device=x.device).unsqueeze_(1)
    r2s = torch.linalg.vecdot(y0, y0) + ticks * (dt * dt)
    r2s.clamp_min_(1e-24)
    torch.sqrt(r2s, out=ext[:, :, d])
    inv_r2 = r2s.reciprocal_().unsqueeze_(2).unbind(0)
    rows = ext.unbind(0)
    P = x.new_empty(B, d + 1)
    g = P[:, :d]
    coef = x.new_empty(B, 1)
    dot = coef.view(B)
    for i in range(steps):
        torch.mm(rows[i], q.M, out=P)
        torch.linalg.vecdot(ys[i], g, out=dot)
        coef.mul_(inv_r2[i])
        u = g.addcmul_(ys[i], coef, value=-1.0)
        norm = torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min_(1e-30)
        torch.addcmul(ys[i], u, torch.div(dt, norm), out=ys[i + 1])
    return torch.add(Y, q.mean)


def functional_flow(
    M: torch.Tensor, mean: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, steps: int
):
    """``device_dt_flow`` without ``out=``, views or in-place operators: what ``torch.compile``
    traces best."""
    d = M.shape[0] - 1
    y = x - mean
    r2 = (y * y).sum(1, keepdim=True).clamp_min(1e-24)
    ys = [y]
    for _ in range(steps):
        P = torch.cat([y, r2.sqrt()], 1) @ M
        g = P[:, :d]
        u = g - y * ((y * g).sum(1, keepdim=True) / r2)
        y = y + u * (dt / torch.linalg.vector_norm(u, dim=1, keepdim=True).clamp_min(1e-30))
        r2 = r2 + dt * dt
        ys.append(y)
    return torch.stack(ys) + mean


class GraphedFlow:
    """``device_dt_flow`` recorded once in a CUDA graph for one batch size; replayed per call."""

    def __init__(self, q: QuadraticBarrier, example: torch.Tensor, steps: int) -> None:
        self.steps = steps
        self.x = example.clone()
        self.dt = torch.zeros((), device=example.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(3):
                device_dt_flow(q, self.x, self.dt, steps)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.path = device_dt_flow(q, self.x, self.dt, steps)

    def __call__(self, x: torch.Tensor, T: float) -> torch.Tensor:
        self.x.copy_(x)
        self.dt.fill_(T / self.steps)
        self.graph.replay()
        return self.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--d", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--n-fit", type=int, default=300, help="fit samples per class")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--compile", action="store_true", help="also torch.compile the loop")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device here: run with --device cpu for a dry run")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    pos, neg = (t.to(args.device) for t in synthetic(args.d, args.n_fit))
    t0 = time.perf_counter()
    s = oc.make_steerer("odesteer", seed=0, select=False).fit(pos, neg)
    q = s.barrier_.quadratic()
    if q is None:
        sys.exit(f"d = {args.d} is beyond the quadratic form's limit on {args.device}")
    print(
        f"{args.device} ({torch.cuda.get_device_name() if cuda else 'CPU'}), torch "
        f"{torch.__version__}, d = {args.d}, {STEPS} Euler steps, fit in "
        f"{time.perf_counter() - t0:.1f} s; median ms per call of {args.repeats}\n"
    )
    T = oc.relative_to_T(s, 0.3)
    worst = 0.0
    print("| batch | floor | flow | steer | graph | compiled | graph / flow |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for B in sorted({1, args.batch}):
        x = synthetic(args.d, B, seed=1)[1].to(args.device)
        lean = quadratic_euler_flow(q, x, T, STEPS)[0]
        dt = torch.tensor(T / STEPS, device=args.device)
        worst = max(worst, float((device_dt_flow(q, x, dt, STEPS) - lean).abs().max()))
        rows = torch.randn(B, args.d + 1, device=args.device)

        def floor(rows=rows):
            for _ in range(STEPS):
                torch.mm(rows, q.M)

        cases = {
            "floor": floor,
            "flow": lambda x=x: s.flow(x, T, STEPS, "euler"),
            "steer": lambda x=x: s.steer(x, T),
        }
        if cuda:
            graphed = GraphedFlow(q, x, STEPS)
            worst = max(worst, float((graphed(x, T) - lean).abs().max()))
            cases["graph"] = lambda x=x, graphed=graphed: graphed(x, T)
        if args.compile:
            compiled = torch.compile(functional_flow, mode="reduce-overhead" if cuda else "default")
            t0 = time.perf_counter()
            got = compiled(q.M, q.mean, x, dt, STEPS)
            worst = max(worst, float((got - lean).abs().max()))
            print(f"(compile for batch {B}: {time.perf_counter() - t0:.1f} s)")
            cases["compiled"] = lambda x=x, f=compiled, dt=dt: f(q.M, q.mean, x, dt, STEPS)
        ms = median_ms(cases, args.repeats, 10, sync)
        cell = {k: f"{ms[k]:.3f}" if k in ms else "-" for k in ("graph", "compiled")}
        ratio = f"{ms['graph'] / ms['flow']:.2f}x" if "graph" in ms else "-"
        print(
            f"| {B} | {ms['floor']:.3f} | {ms['flow']:.3f} | {ms['steer']:.3f} | "
            f"{cell['graph']} | {cell['compiled']} | {ratio} |"
        )
    scale = float(s.barrier_.mean_.abs().max())
    ok = worst <= 1e-4 * max(1.0, scale)
    print(f"\nlargest difference from the lean flow's path: {worst:.2e} ({'ok' if ok else 'FAIL'})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

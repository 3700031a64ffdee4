"""Linear kernels on CPU: PyTorch's default float32 kernel (MKL) vs oneDNN, at decoding batch sizes.

Why ``load_lm`` runs float32 linear layers on CPU through oneDNN (``odesteer_core/method/kernels.py``).
One decoding step of the ``cpu-85m`` model of ``generation_speed.py`` multiplies 1-4 rows by each of
its 85 weight matrices (12 layers x q, k, v, o, gate, up, down, plus the 16k-token head): about
390 MB of float32 weights, far more than the caches, as in real decoding. This script times one such
pass over separate weight matrices of those shapes, for 1 to 4 rows (1 = the unsteered arm alone,
3 = the app's three arms), with each kernel, median of ``--repeats`` passes after warm-up.

Printed: ms per pass, each kernel's cost of 3 rows relative to 1 row, and oneDNN's speed-up.

Usage: python benchmarks/linear_kernels.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
from odesteer_core.method.kernels import onednn_available

D, MLP, VOCAB, LAYERS = 768, 2048, 16000, 12
SHAPES = [(D, D)] * 4 + [(MLP, D), (MLP, D), (D, MLP)]  # (out, in): q k v o, gate up, down


def weights() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mats = [torch.randn(o, i, generator=g) / i**0.5 for _ in range(LAYERS) for o, i in SHAPES]
    return [*mats, torch.randn(VOCAB, D, generator=g) / D**0.5]


def one_pass(kernel: str, mats: list[torch.Tensor], inputs: dict[int, torch.Tensor]) -> float:
    t0 = time.perf_counter()
    for w in mats:
        x = inputs[w.shape[1]]
        if kernel == "onednn":
            torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        else:
            F.linear(x, w)
    return 1000 * (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if not onednn_available():
        sys.exit("error: this torch build has no working oneDNN linear kernel")
    mats = weights()
    megabytes = sum(w.numel() for w in mats) * 4 / 2**20
    print(
        f"{len(mats)} float32 weight matrices, {megabytes:.0f} MiB; {platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}; "
        f"median of {args.repeats} passes\n"
    )
    kernels = ("default", "onednn")
    ms: dict[tuple[str, int], float] = {}
    with torch.inference_mode():
        for rows in (1, 2, 3, 4):
            g = torch.Generator().manual_seed(rows)
            inputs = {n: torch.randn(rows, n, generator=g) for n in (D, MLP)}
            for kernel in kernels:
                for _ in range(3):
                    one_pass(kernel, mats, inputs)
                times = [one_pass(kernel, mats, inputs) for _ in range(args.repeats)]
                ms[kernel, rows] = statistics.median(times)
    print("| rows | default (MKL) ms | oneDNN ms | oneDNN speed-up |")
    print("|---:|---:|---:|---:|")
    for rows in (1, 2, 3, 4):
        a, b = ms["default", rows], ms["onednn", rows]
        print(f"| {rows} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    for kernel in kernels:
        print(f"{kernel}: 3 rows cost {ms[kernel, 3] / ms[kernel, 1]:.2f}x of 1 row")


if __name__ == "__main__":
    main()

"""Speed report: the fit, steer and generation benchmarks in one run, with machine and date.

  CPU (default)  fit_speed.py (ours vs scikit-learn), steer_speed.py (d = 4096),
                 linear_kernels.py (MKL vs oneDNN at 1-4 rows),
                 generation_speed.py --preset cpu-85m (batching gain, ODESteer overhead per token),
                 the same with --no-onednn (PyTorch's default linear kernel)
  --gpu          gpu_flow.py (the lean flow: eager launches vs one CUDA graph, d = 4096),
                 steer_speed.py --device cuda, generation_speed.py --preset gpu-8b
                 (Llama-3.1-8B shape, bfloat16: about 3 minutes on one H100)

Each script prints its own table and PASS/FAIL lines; this runs them one after another (never in
parallel: they time each other otherwise) and writes everything to ``--out`` as Markdown.

Usage: python benchmarks/speed_report.py [--gpu] [--out benchmarks/results/speed_cpu.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = {
    "cpu": [
        ["fit_speed.py"],
        ["steer_speed.py"],
        ["linear_kernels.py"],
        ["generation_speed.py", "--preset", "cpu-85m"],
        ["generation_speed.py", "--preset", "cpu-85m", "--no-onednn"],
    ],
    "gpu": [
        ["gpu_flow.py", "--device", "cuda"],
        ["steer_speed.py", "--device", "cuda"],
        ["generation_speed.py", "--preset", "gpu-8b"],
    ],
}


def machine(kind: str) -> str:
    import torch

    text = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    if kind == "gpu" and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name()}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--out", default=None, help="Markdown file (default: benchmarks/results/)")
    args = parser.parse_args()
    kind = "gpu" if args.gpu else "cpu"
    out = Path(args.out or HERE / "results" / f"speed_{kind}.md")
    sections = [f"# Speed report ({kind})\n\n{machine(kind)}; {date.today()}\n"]
    failed = False
    for run in RUNS[kind]:
        command = [sys.executable, str(HERE / run[0]), *run[1:]]
        print(f"$ python benchmarks/{' '.join(run)}", flush=True)
        proc = subprocess.run(command, capture_output=True, text=True)
        print(proc.stdout, flush=True)
        if proc.returncode != 0:
            failed = True
            print(proc.stderr[-3000:], file=sys.stderr)
        sections.append(
            f"## `python benchmarks/{' '.join(run)}`\n\n```\n{proc.stdout.strip()}\n```\n"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sections))
    print(f"written: {out}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""``linear``: ``F.linear`` through oneDNN's kernel for float32 on CPU, where it applies.

PyTorch sends a float32 CPU ``F.linear`` to the BLAS it was built with (MKL in the official
wheels). On some CPUs that is far from the best kernel for the 1-4 rows of decoding or of a
steering step. On this project's 2-core AMD EPYC build machine, over the 85 weight matrices of a
97 M-parameter Llama (``benchmarks/linear_kernels.py``), MKL takes 2.0x as long for 3 rows as for
1, oneDNN 1.3x; oneDNN is 1.8x faster than MKL for 1 row and 2.8x for 3 rows. oneDNN is used only
after a self-check against ``F.linear`` passes on this machine; autograd, other dtypes and other
devices fall back to ``F.linear``. ``odesteer_core.lm.cpu_kernels`` points a model's layers at it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["linear", "onednn_available"]


@functools.cache
def onednn_available() -> bool:
    """True when oneDNN's linear kernel exists and agrees with ``F.linear`` on this machine."""
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(96, 80, generator=generator)
    bias = torch.randn(96, generator=generator)
    try:
        with torch.inference_mode():
            for rows in ((1, 80), (3, 80), (2, 5, 80)):
                x = torch.randn(rows, generator=generator)
                got = op(x, weight, bias, "none", [], "")
                if not torch.allclose(got, F.linear(x, weight, bias), rtol=1e-4, atol=1e-4):
                    return False
    except RuntimeError:
        return False
    return True


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN where it applies (float32 on CPU, no autograd)."""
    if (
        x.dtype != torch.float32
        or weight.dtype != torch.float32
        or x.device.type != "cpu"
        or weight.device.type != "cpu"
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        or not onednn_available()
    ):
        return F.linear(x, weight, bias)  # oneDNN's kernel has no autograd, nor other dtypes
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

"""oneDNN kernels for a model's float32 ``nn.Linear`` layers on CPU.

PyTorch sends a float32 CPU ``F.linear`` to the BLAS it was built with (MKL in the official
wheels). On some CPUs that is far from the best kernel for decoding, where every linear layer
sees 1-4 rows. On this project's 2-core AMD EPYC build machine, over the 85 weight matrices of a
97 M-parameter Llama (``benchmarks/linear_kernels.py``), MKL takes 2.0x as long for 3 rows as for
1 (below 4 rows it loops matrix-vector products), oneDNN 1.3x; oneDNN, the library PyTorch
already uses for bfloat16 and for ``torch.compile`` on CPU, is 1.8x faster than MKL for 1 row
and 2.8x for 3 rows.

``use_onednn_linear(model)`` points each eligible layer's ``forward`` at oneDNN; the layer, its
weights, its hooks and its ``state_dict`` are untouched, and ``restore_linear`` undoes it. A call
falls back to ``F.linear`` whenever oneDNN does not apply: autograd recording, other dtypes or
devices. oneDNN is used only after a self-check against ``F.linear`` passes on this machine.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["linear", "onednn_available", "restore_linear", "use_onednn_linear"]

_MARK = "_odesteer_onednn"


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


def _onednn_forward(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return linear(x, layer.weight, layer.bias)


def use_onednn_linear(model: torch.nn.Module) -> int:
    """Run the float32 CPU ``nn.Linear`` layers of ``model`` through oneDNN.

    Only layers of exactly ``nn.Linear`` (not subclasses such as quantized layers) whose weight is
    a float32 CPU tensor are switched; nothing happens when ``onednn_available()`` is False.

    Returns:
        The number of layers switched (0 when none applies).
    """
    if not onednn_available():
        return 0
    switched = 0
    for module in model.modules():
        if (
            type(module) is torch.nn.Linear
            and not getattr(module, _MARK, False)
            and module.weight.dtype == torch.float32
            and module.weight.device.type == "cpu"
        ):
            module.forward = functools.partial(_onednn_forward, module)
            setattr(module, _MARK, True)
            switched += 1
    return switched


def restore_linear(model: torch.nn.Module) -> int:
    """Undo ``use_onednn_linear``: every switched layer runs ``nn.Linear.forward`` again.

    Returns:
        The number of layers restored.
    """
    restored = 0
    for module in model.modules():
        if getattr(module, _MARK, False):
            del module.forward, module._odesteer_onednn
            restored += 1
    return restored

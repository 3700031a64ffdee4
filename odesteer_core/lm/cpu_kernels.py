"""oneDNN kernels for a model's float32 ``nn.Linear`` layers on CPU, scoped like a hook.

PyTorch sends a float32 CPU ``F.linear`` to the BLAS it was built with (MKL in the official
wheels). On some CPUs that is far from the best kernel for decoding, where every linear layer
sees 1-4 rows. On this project's 2-core AMD EPYC build machine, over the 85 weight matrices of a
97 M-parameter Llama (``benchmarks/linear_kernels.py``), MKL takes 2.0x as long for 3 rows as for
1 (below 4 rows it loops matrix-vector products), oneDNN 1.3x; oneDNN, the library PyTorch
already uses for bfloat16 and for ``torch.compile`` on CPU, is 1.8x faster than MKL for 1 row
and 2.8x for 3 rows.

``with onednn_linear(model):`` points each eligible layer's ``forward`` at oneDNN for the
duration of the block, like a hook: on exit (also on an exception) every layer runs
``nn.Linear.forward`` again, so the model is never left changed. Generation enters the block
around each forward call, never across a ``yield`` (``generate.py``), so entering and leaving
are cheap: the eligible layers are found once per model, and the switch is a dictionary write
per layer. Blocks on one model may nest and run in several threads at once (a shared model in
the app): the switch is made by the first to enter and undone by the last to leave. Weights,
hooks and ``state_dict`` are never touched. A call falls back to ``F.linear`` whenever oneDNN
does not apply: autograd recording, other dtypes or devices (also for a layer whose weights
moved after it was found). oneDNN is used only after a self-check against ``F.linear`` passes on
this machine.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from odesteer_core.method.kernels import linear, onednn_available

__all__ = ["eligible_layers", "onednn_linear"]

_lock = threading.Lock()


def _onednn_forward(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return linear(x, layer.weight, layer.bias)


def eligible_layers(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """Layers of exactly ``nn.Linear`` (not subclasses such as quantized layers), float32, CPU,
    whose ``forward`` nobody else has replaced (e.g. accelerate's offloading hooks)."""
    return [
        m
        for m in model.modules()
        if type(m) is torch.nn.Linear
        and m.weight.dtype == torch.float32
        and m.weight.device.type == "cpu"
        and "forward" not in vars(m)
    ]


@dataclass
class _Switch:
    """One model's switch: its eligible layers (found once), users inside, layers switched.

    A layer is held as its attribute dictionary (``vars(layer)``) and its oneDNN ``forward``:
    the switch is an instance attribute, as ``layer.forward = ...`` would set it, written
    without ``nn.Module.__setattr__``'s checks, so that it costs one dictionary write.
    """

    forwards: list[tuple[dict, Callable]]  # (vars(layer), its oneDNN forward)
    users: int = 0
    switched: list[tuple[dict, Callable]] = field(default_factory=list)


_switches: weakref.WeakKeyDictionary[torch.nn.Module, _Switch] = weakref.WeakKeyDictionary()


def _switch_on(switch: _Switch) -> None:
    for attributes, forward in switch.forwards:
        if "forward" not in attributes:  # replaced by someone else since: leave it alone
            attributes["forward"] = forward
            switch.switched.append((attributes, forward))


def _switch_off(switch: _Switch) -> None:
    for attributes, forward in switch.switched:
        if attributes.get("forward") is forward:
            del attributes["forward"]
    switch.switched.clear()


@contextlib.contextmanager
def onednn_linear(model: torch.nn.Module, enabled: bool = True) -> Iterator[int]:
    """Run the float32 CPU ``nn.Linear`` layers of ``model`` through oneDNN inside the block.

    The eligible layers (``eligible_layers``) are found on the first block of a model; a layer
    added to the model later keeps PyTorch's kernel.

    Args:
        model: Any module, e.g. a Hugging Face causal LM.
        enabled: False makes the block a no-op (the caller's opt-out).

    Yields:
        The number of layers running on oneDNN (0 when none applies or oneDNN is unavailable).
    """
    if not enabled or not onednn_available():
        yield 0
        return
    with _lock:
        switch = _switches.get(model)
        if switch is None:
            layers = eligible_layers(model)
            forwards = [(vars(m), functools.partial(_onednn_forward, m)) for m in layers]
            switch = _switches[model] = _Switch(forwards)
        if switch.users == 0:
            _switch_on(switch)
        switch.users += 1
        switched = len(switch.switched)
    try:
        yield switched
    finally:
        with _lock:
            switch.users -= 1
            if switch.users == 0:
                _switch_off(switch)

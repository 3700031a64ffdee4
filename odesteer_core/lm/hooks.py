"""Forward hooks on decoder layers: edit a layer's output (the residual stream after that layer),
or run a check before each layer (e.g. to abort a forward pass that is no longer wanted).

The HF model is never wrapped or mutated: a hook is registered for the duration of a `with`
block and its handle is removed in `finally`, also when the body raises. Hooks are global state
on a model shared by every caller, so nothing may outlive the block; a generator must not hold a
block open across a `yield` (generation enters one around each forward call).

Note (transformers 5): `output_hidden_states=True` installs HF's own capture hooks on the decoder
layers the first time it is used, and they stay (inactive) for the life of the model. Count hooks
before and after rather than expecting zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch

HiddenFn = Callable[[torch.Tensor], "torch.Tensor | None"]


@contextmanager
def layer_output_hook(
    layer_module: torch.nn.Module, fn: HiddenFn, *, prepend: bool = False
) -> Iterator[None]:
    """Run `fn` on a layer's output hidden states while the `with` block is active.

    Decoder layers return either the hidden states tensor or a tuple `(hidden, ...)`; both are
    handled, and the rest of a tuple is passed through unchanged.

    Args:
        layer_module: The decoder layer (e.g. `lm.layers[13]`).
        fn: Receives the hidden states `(batch, seq, d_model)`; returns a replacement tensor of
            the same shape (cast to the layer's dtype and device) or None to leave them as is.
        prepend: Run before hooks registered earlier on this layer (e.g. HF's
            `output_hidden_states` capture hooks, which then see the replaced output).

    Raises:
        TypeError: `layer_module` is not a module, `fn` is not callable, or `fn` returns
            something other than a tensor or None.
        ValueError: The replacement has a different shape.
    """
    if not isinstance(layer_module, torch.nn.Module):
        raise TypeError(
            f"layer_module must be a torch.nn.Module (e.g. lm.layers[i]), got {type(layer_module).__name__}"
        )
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")

    def hook(module: torch.nn.Module, args: tuple, output: object) -> object:
        is_tuple = isinstance(output, (tuple, list))
        hidden = output[0] if is_tuple else output
        if not isinstance(hidden, torch.Tensor):
            raise TypeError(
                f"{type(module).__name__} returned {type(output).__name__}; expected a tensor or "
                "a tuple whose first item is the hidden states tensor"
            )
        new = fn(hidden)
        if new is None:
            return None
        if not isinstance(new, torch.Tensor):
            raise TypeError(f"hook fn must return a tensor or None, got {type(new).__name__}")
        if new.shape != hidden.shape:
            raise ValueError(
                f"hook fn returned shape {tuple(new.shape)}, but the layer output has shape "
                f"{tuple(hidden.shape)}; return a tensor of the same shape"
            )
        new = new.to(dtype=hidden.dtype, device=hidden.device)
        if not is_tuple:
            return new
        return [new, *output[1:]] if isinstance(output, list) else (new, *output[1:])

    handle = layer_module.register_forward_hook(hook, prepend=prepend)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def before_layers(layers: Iterable[torch.nn.Module], fn: Callable[[], None]) -> Iterator[None]:
    """Call `fn()` before each of `layers` runs, while the `with` block is active.

    Meant for checks between layers: an exception raised by `fn` leaves the forward call at once
    (e.g. a cancelled request on a large model, where one forward pass takes seconds), and the
    hooks go with the block.

    Args:
        layers: Modules to check before, e.g. `lm.layers` (all decoder layers).
        fn: Called with no arguments; its return value is ignored.

    Raises:
        TypeError: An item of `layers` is not a module, or `fn` is not callable.
    """
    layers = list(layers)
    for layer in layers:
        if not isinstance(layer, torch.nn.Module):
            raise TypeError(f"layers must be torch.nn.Module objects, got {type(layer).__name__}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")

    def hook(module: torch.nn.Module, args: tuple) -> None:
        fn()

    handles = []
    try:
        for layer in layers:
            handles.append(layer.register_forward_pre_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def active_hooks(model: torch.nn.Module) -> int:
    """Number of forward and forward-pre hooks registered on `model` and all its submodules."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

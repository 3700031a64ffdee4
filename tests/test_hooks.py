"""Forward hooks on decoder layers: they read, replace, check, and never outlive their block."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ARCHS, tiny_model

from odesteer_core.lm.hooks import active_hooks, before_layers, layer_output_hook
from odesteer_core.lm.loading import LoadedLM

LAYER = 1


pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(lm: LoadedLM) -> dict[str, torch.Tensor]:
    return dict(
        lm.tokenizer(["Hello there", "Q: Why?\nA: Because."], return_tensors="pt", padding=True)
    )


def _logits(lm: LoadedLM, enc: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.inference_mode():
        return lm.model(**enc).logits


@pytest.mark.parametrize("arch", ARCHS)
def test_read_hook_sees_hidden_states(arch: str) -> None:
    lm = tiny_model(arch)
    enc = _inputs(lm)
    seen: list[torch.Tensor] = []
    with torch.inference_mode(), layer_output_hook(lm.layers[LAYER], seen.append):
        out = lm.model(**enc, output_hidden_states=True)
    assert len(seen) == 1
    assert seen[0].shape == (2, enc["input_ids"].shape[1], lm.d_model)
    torch.testing.assert_close(seen[0], out.hidden_states[LAYER + 1], rtol=0, atol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_replacement_changes_logits_and_is_removed(arch: str) -> None:
    lm = tiny_model(arch)
    enc = _inputs(lm)
    before = active_hooks(lm.model)
    baseline = _logits(lm, enc)
    direction = torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))
    with layer_output_hook(lm.layers[LAYER], lambda h: h + 3.0 * direction):
        assert active_hooks(lm.model) == before + 1
        steered = _logits(lm, enc)
    assert active_hooks(lm.model) == before
    assert not torch.allclose(steered, baseline, atol=1e-4)
    torch.testing.assert_close(_logits(lm, enc), baseline, rtol=0, atol=0)  # edit gone


@pytest.mark.parametrize("arch", ARCHS)
def test_hook_removed_after_exception(arch: str) -> None:
    lm = tiny_model(arch)
    before = active_hooks(lm.model)
    with pytest.raises(RuntimeError, match="boom"), layer_output_hook(lm.layers[0], lambda h: None):
        raise RuntimeError("boom")
    assert active_hooks(lm.model) == before

    def explode(hidden: torch.Tensor) -> None:
        raise RuntimeError("boom in forward")

    with (
        pytest.raises(RuntimeError, match="boom in forward"),
        layer_output_hook(lm.layers[0], explode),
    ):
        _logits(lm, _inputs(lm))
    assert active_hooks(lm.model) == before


def test_identity_replacement_is_exact() -> None:
    lm = tiny_model("llama")
    enc = _inputs(lm)
    baseline = _logits(lm, enc)
    with layer_output_hook(lm.layers[LAYER], lambda h: h.clone()):
        torch.testing.assert_close(_logits(lm, enc), baseline, rtol=0, atol=0)


def test_prepend_runs_before_hf_capture_hooks() -> None:
    lm = tiny_model("llama")
    enc = _inputs(lm)
    with torch.inference_mode():  # installs HF's capture hooks, if not there yet
        plain = lm.model(**enc, output_hidden_states=True).hidden_states[LAYER + 1]
        with layer_output_hook(lm.layers[LAYER], lambda h: h + 1.0, prepend=True):
            steered = lm.model(**enc, output_hidden_states=True).hidden_states[LAYER + 1]
    torch.testing.assert_close(steered, plain + 1.0)


class _TupleLayer(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        return x * 2, "extra"


class _TensorLayer(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_tuple_and_tensor_outputs() -> None:
    x = torch.ones(1, 2, 3)
    layer = _TupleLayer()
    with layer_output_hook(layer, lambda h: h + 1):
        hidden, extra = layer(x)
    assert torch.equal(hidden, torch.full((1, 2, 3), 3.0)) and extra == "extra"
    layer = _TensorLayer()
    with layer_output_hook(layer, lambda h: h.double() + 1):  # cast back to the layer's dtype
        out = layer(x)
    assert torch.equal(out, torch.full((1, 2, 3), 3.0)) and out.dtype == torch.float32
    assert torch.equal(layer(x), torch.full((1, 2, 3), 2.0))


def test_bad_replacements_raise_and_clean_up() -> None:
    layer = _TensorLayer()
    with (
        pytest.raises(ValueError, match=r"shape \(2, 2\)"),
        layer_output_hook(layer, lambda h: h[0, :, :2]),
    ):
        layer(torch.ones(1, 2, 3))
    with pytest.raises(TypeError, match="tensor or None"), layer_output_hook(layer, lambda h: 1.0):
        layer(torch.ones(1, 2, 3))
    assert active_hooks(layer) == 0


def test_bad_arguments() -> None:
    with (
        pytest.raises(TypeError, match="torch.nn.Module"),
        layer_output_hook("model.layers.3", print),
    ):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="callable"), layer_output_hook(_TensorLayer(), None):  # type: ignore[arg-type]
        pass


class _Stop(Exception):
    pass


def test_before_layers_runs_before_every_layer_and_can_abort_the_pass() -> None:
    lm = tiny_model("llama")
    enc = _inputs(lm)
    before = active_hooks(lm.model)
    baseline = _logits(lm, enc)
    order: list[str] = []
    with (
        before_layers(lm.layers, lambda: order.append("check")),
        layer_output_hook(lm.layers[0], lambda h: order.append("layer 0")),
    ):
        assert active_hooks(lm.model) == before + len(lm.layers) + 1
        torch.testing.assert_close(_logits(lm, enc), baseline, rtol=0, atol=0)  # reads only
    assert order[:3] == ["check", "layer 0", "check"] and order.count("check") == len(lm.layers)
    assert active_hooks(lm.model) == before
    seen: list[torch.Tensor] = []

    def stop() -> None:
        if seen:  # after the first layer ran
            raise _Stop

    with (
        pytest.raises(_Stop),
        before_layers(lm.layers, stop),
        layer_output_hook(lm.layers[-1], seen.append),
        layer_output_hook(lm.layers[0], seen.append),
    ):
        _logits(lm, enc)
    assert len(seen) == 1  # the pass stopped before the second layer; the last never ran
    assert active_hooks(lm.model) == before
    torch.testing.assert_close(_logits(lm, enc), baseline, rtol=0, atol=0)


def test_before_layers_bad_arguments() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"), before_layers(["layer"], print):  # type: ignore[list-item]
        pass
    with pytest.raises(TypeError, match="callable"), before_layers([_TensorLayer()], None):  # type: ignore[arg-type]
        pass

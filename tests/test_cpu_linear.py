"""oneDNN linear layers on CPU: same outputs as nn.Linear, really used, scoped like a hook."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from tiny_models import build_tiny_random

from odesteer_core import Arm, GenerationSettings, generate_arms
from odesteer_core.lm.cpu_kernels import eligible_layers, onednn_linear
from odesteer_core.lm.loading import LoadedLM, load_lm
from odesteer_core.method.kernels import onednn_available

pytestmark = [
    pytest.mark.skipif(
        not onednn_available(), reason="this torch build has no working oneDNN linear kernel"
    ),
    pytest.mark.usefixtures("one_thread"),
]
ONEDNN_OP = "mkldnn::_linear_pointwise"


def _load(arch: str, tmp_path: Path, **options) -> LoadedLM:
    return load_lm(str(build_tiny_random(arch, tmp_path / arch)), device="cpu", **options)


def _ops(model: torch.nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, set[str]]:
    with torch.profiler.profile() as prof, torch.inference_mode():
        logits = model(input_ids=ids).logits
    return logits, {event.name for event in prof.events()}


def _untouched(model: torch.nn.Module) -> bool:
    """No instance attribute left on any layer: every one runs its class's forward."""
    return all(
        "forward" not in vars(m) and not hasattr(m, "_odesteer_onednn") for m in model.modules()
    )


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_same_logits_as_nn_linear_inside_the_block_only(arch: str, tmp_path: Path) -> None:
    lm = _load(arch, tmp_path)
    n_linear = sum(type(m) is torch.nn.Linear for m in lm.model.modules())
    assert lm.onednn_layers == len(eligible_layers(lm.model)) == n_linear > 0  # GPT-2: head only
    assert _untouched(lm.model)  # loading changes nothing
    ids = torch.randint(0, lm.model.config.vocab_size, (3, 7), generator=torch.Generator())
    with lm.cpu_kernels() as switched:
        assert switched == n_linear
        fast, fast_ops = _ops(lm.model, ids)
    assert ONEDNN_OP in fast_ops and _untouched(lm.model)
    plain, plain_ops = _ops(lm.model, ids)
    assert ONEDNN_OP not in plain_ops
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def test_restored_after_an_exception_nested_and_across_threads(tmp_path: Path) -> None:
    model = _load("llama", tmp_path).model
    with pytest.raises(RuntimeError, match="boom"), onednn_linear(model):
        raise RuntimeError("boom")
    assert _untouched(model)
    inside, leave = threading.Event(), threading.Event()

    def other_user() -> None:
        with onednn_linear(model):
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_user)
    thread.start()
    assert inside.wait(10)
    with onednn_linear(model) as outer, onednn_linear(model) as inner:
        assert outer == inner > 0
    assert not _untouched(model)  # the other thread's block is still open
    leave.set()
    thread.join(10)
    assert _untouched(model)


def test_opt_out_and_other_dtypes_are_left_alone(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path, onednn=False)
    assert lm.onednn_layers == 0
    with lm.cpu_kernels() as switched:
        assert switched == 0 and _untouched(lm.model)
    bf16 = _load("qwen2", tmp_path, dtype="bfloat16")
    with bf16.cpu_kernels() as switched:
        assert switched == 0 == bf16.onednn_layers


def test_generation_runs_on_onednn_and_leaves_the_model_untouched(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path)
    keys = list(lm.model.state_dict())
    seen = []
    handle = lm.model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    settings = GenerationSettings(max_new_tokens=12)
    try:
        with torch.profiler.profile() as prof:
            *_, fast = generate_arms(lm, "Hello there", [Arm("none")], layer=1, settings=settings)
        lm.onednn = False
        *_, plain = generate_arms(lm, "Hello there", [Arm("none")], layer=1, settings=settings)
    finally:
        handle.remove()
    assert ONEDNN_OP in {event.name for event in prof.events()}
    assert seen, "a forward hook on a switched layer must still fire"
    assert _untouched(lm.model) and list(lm.model.state_dict()) == keys
    assert fast.arms[0].token_ids == plain.arms[0].token_ids


def test_a_forward_replaced_by_someone_else_is_left_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    wrapper = model[0].forward  # e.g. accelerate's offloading hook sets an instance forward

    def offloaded(x):
        return wrapper(x)

    model[0].forward = offloaded
    with onednn_linear(model) as switched:
        assert switched == 1 and model[0].forward is offloaded
    assert model[0].forward is offloaded and "forward" not in vars(model[1])
    model[1].forward = offloaded  # replaced after the switch first found its layers
    with onednn_linear(model) as switched:
        assert switched == 0 and model[1].forward is offloaded
    assert model[1].forward is offloaded
    del model[1].forward
    with onednn_linear(model) as switched:
        assert switched == 1 and "forward" in vars(model[1])
        model[1].forward = offloaded  # replaced inside the block: left as it is on exit
    assert model[1].forward is offloaded


def test_generation_switches_the_kernels_for_each_forward_call_only(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path)
    during: list[bool] = []
    head = lm.model.lm_head
    handle = head.register_forward_pre_hook(lambda m, a: during.append("forward" in vars(m)))
    settings = GenerationSettings(max_new_tokens=5)
    tokens = 0
    try:
        for comparison in generate_arms(lm, "Hi", [Arm("none")], layer=1, settings=settings):
            assert _untouched(lm.model), "a yield must leave every layer as it was"
            tokens = comparison.timing["tokens"]
    finally:
        handle.remove()
    assert tokens > 0 and during == [True] * tokens


def test_autograd_falls_back_to_f_linear() -> None:
    layer = torch.nn.Linear(16, 8)
    reference = torch.nn.Linear(16, 8)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    with onednn_linear(layer) as switched:
        assert switched == 1
        layer(x).square().sum().backward()
        with torch.no_grad(), torch.profiler.profile() as prof:
            layer(x)
    reference(x).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    assert ONEDNN_OP in {event.name for event in prof.events()}

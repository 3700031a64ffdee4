"""oneDNN linear layers on CPU: same outputs as nn.Linear, really used, fully undone, safe fallbacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tiny_models import build_tiny_random, single_thread

from odesteer_core import Arm, GenerationSettings, generate_arms
from odesteer_core.cpu_linear import onednn_available, restore_linear, use_onednn_linear
from odesteer_core.models import LoadedLM, load_lm

pytestmark = pytest.mark.skipif(
    not onednn_available(), reason="this torch build has no working oneDNN linear kernel"
)
ONEDNN_OP = "mkldnn::_linear_pointwise"


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


def _load(arch: str, tmp_path: Path, **options) -> LoadedLM:
    return load_lm(str(build_tiny_random(arch, tmp_path / arch)), device="cpu", **options)


def _plain_linears(model: torch.nn.Module) -> int:
    return sum(type(m) is torch.nn.Linear for m in model.modules())


def _ops(model: torch.nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, set[str]]:
    with torch.profiler.profile() as prof, torch.inference_mode():
        logits = model(input_ids=ids).logits
    return logits, {event.name for event in prof.events()}


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_same_logits_as_nn_linear_and_really_onednn(arch: str, tmp_path: Path) -> None:
    lm = _load(arch, tmp_path)
    assert lm.onednn_layers == _plain_linears(lm.model) > 0  # GPT-2: lm_head only (Conv1D)
    ids = torch.randint(
        0, lm.model.config.vocab_size, (3, 7), generator=torch.Generator().manual_seed(0)
    )
    fast, fast_ops = _ops(lm.model, ids)
    assert ONEDNN_OP in fast_ops
    assert restore_linear(lm.model) == lm.onednn_layers
    plain, plain_ops = _ops(lm.model, ids)
    assert ONEDNN_OP not in plain_ops
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)
    assert restore_linear(lm.model) == 0


def test_load_lm_opt_out_and_idempotent(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path, onednn=False)
    assert lm.onednn_layers == 0
    assert all(not hasattr(m, "_odesteer_onednn") for m in lm.model.modules())
    n = use_onednn_linear(lm.model)
    assert n == _plain_linears(lm.model) and use_onednn_linear(lm.model) == 0


def test_other_dtypes_are_left_alone(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path, dtype="bfloat16")
    assert lm.onednn_layers == 0


def test_state_dict_hooks_and_greedy_tokens_unchanged(tmp_path: Path) -> None:
    lm = _load("llama", tmp_path)
    keys = list(lm.model.state_dict())
    seen = []
    handle = lm.model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        settings = GenerationSettings(max_new_tokens=12)
        arms = [Arm("none")]
        *_, fast = generate_arms(lm, "Hello there", arms, layer=1, settings=settings)
        assert seen, "a forward hook on a switched layer must still fire"
        restore_linear(lm.model)
        *_, plain = generate_arms(lm, "Hello there", arms, layer=1, settings=settings)
    finally:
        handle.remove()
    assert list(lm.model.state_dict()) == keys
    assert fast.arms[0].token_ids == plain.arms[0].token_ids


def test_autograd_falls_back_to_f_linear() -> None:
    layer = torch.nn.Linear(16, 8)
    reference = torch.nn.Linear(16, 8)
    reference.load_state_dict(layer.state_dict())
    assert use_onednn_linear(layer) == 1
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    layer(x).square().sum().backward()
    reference(x).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    with torch.no_grad(), torch.profiler.profile() as prof:
        layer(x)
    assert ONEDNN_OP in {event.name for event in prof.events()}

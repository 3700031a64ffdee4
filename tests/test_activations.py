"""Activation extraction: exact against output_hidden_states, padding-independent, cached."""

from __future__ import annotations

import threading

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file
from tiny_models import ARCHS, N_LAYERS, tiny_model

from odesteer_core.lm.activations import encode_texts, extract_activations, extract_layers
from odesteer_core.lm.hooks import active_hooks
from odesteer_core.lm.loading import TINY_RANDOM_LLAMA, LoadedLM, load_lm

TEXTS = [
    "Hi",
    "Q: What is the capital of France?\nA: Paris.",
    "The quick brown fox jumps over the lazy dog, again and again and again.",
    "x",
    "Q: Is the moon made of cheese?\nA: No.",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(lm: LoadedLM, texts: list[str], layer: int) -> torch.Tensor:
    """hidden_states[layer + 1] at the last real token, batched by the tokenizer's own padding."""
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True)
    mask = enc["attention_mask"]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        hidden = lm.model(**enc, position_ids=position_ids, output_hidden_states=True).hidden_states
    lengths = mask.sum(1)
    last = lengths - 1 if lm.tokenizer.padding_side == "right" else torch.full_like(lengths, -1)
    return hidden[layer + 1][torch.arange(len(texts)), last].float()


def _unpadded(lm: LoadedLM, text: str, layer: int) -> torch.Tensor:
    with torch.inference_mode():
        out = lm.model(**lm.tokenizer(text, return_tensors="pt"), output_hidden_states=True)
    return out.hidden_states[layer + 1][0, -1].float()


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("arch", ARCHS)
def test_matches_hidden_states(arch: str, padding_side: str, tmp_path, monkeypatch) -> None:
    lm = tiny_model(arch)
    monkeypatch.setattr(lm.tokenizer, "padding_side", padding_side)
    for layer in (0, N_LAYERS - 2):  # the last entry of hidden_states has the final norm applied
        reference = _reference(lm, TEXTS, layer)  # installs HF's capture hooks (transformers 5)
        # Padding does not leak in: each text alone, unpadded, gives the same vector.
        alone = torch.stack([_unpadded(lm, text, layer) for text in TEXTS])
        before = active_hooks(lm.model)
        acts = extract_activations(lm, TEXTS, layer, progress=False, cache_dir=tmp_path)
        assert active_hooks(lm.model) == before
        assert acts.shape == (len(TEXTS), lm.d_model)
        assert acts.dtype == torch.float32 and acts.device.type == "cpu"
        torch.testing.assert_close(acts, reference, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(acts, alone, rtol=1e-5, atol=1e-5)


def test_last_layer_matches_layer_output(tmp_path) -> None:
    lm = tiny_model("llama")
    acts = extract_activations(lm, TEXTS, N_LAYERS - 1, progress=False, cache_dir=tmp_path)
    final_norm = lm.model.model.norm
    with torch.inference_mode():
        normed = final_norm(acts)
    torch.testing.assert_close(normed, _reference(lm, TEXTS, N_LAYERS - 1), rtol=1e-5, atol=1e-5)


def test_small_batches_keep_order(tmp_path) -> None:
    lm = tiny_model("qwen2")
    whole = extract_activations(lm, TEXTS, 1, batch_size=16, progress=False, cache_dir=tmp_path)
    split = extract_activations(
        lm, TEXTS, 1, batch_size=2, progress=False, cache_dir=tmp_path, cache_key="split"
    )
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)


def _count_forwards(lm: LoadedLM) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls = [0]
    handle = lm.model.get_input_embeddings().register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1)
    )
    return calls, handle


def test_cache_hit_skips_the_model(tmp_path) -> None:
    lm = tiny_model("llama")
    calls, handle = _count_forwards(lm)
    try:
        first = extract_activations(lm, TEXTS, 1, batch_size=2, progress=False, cache_dir=tmp_path)
        assert calls[0] == 3
        files = list(tmp_path.glob("*.safetensors"))
        assert len(files) == 1
        second = extract_activations(lm, TEXTS, 1, batch_size=2, progress=False, cache_dir=tmp_path)
        assert calls[0] == 3 and torch.equal(first, second)
        # Anything that changes the activations misses the cache.
        extract_activations(lm, TEXTS, 0, progress=False, cache_dir=tmp_path)
        extract_activations(lm, TEXTS, 1, progress=False, cache_dir=tmp_path, cache_key="other")
        extract_activations(
            lm, [*TEXTS[:-1], TEXTS[-1] + " "], 1, progress=False, cache_dir=tmp_path
        )
        assert calls[0] == 6 and len(list(tmp_path.glob("*.safetensors"))) == 4
    finally:
        handle.remove()
    assert not list(tmp_path.glob(".tmp-*"))


def test_corrupt_cache_is_recomputed(tmp_path) -> None:
    lm = tiny_model("llama")
    good = extract_activations(lm, TEXTS, 1, progress=False, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable activation cache"):
        again = extract_activations(lm, TEXTS, 1, progress=False, cache_dir=tmp_path)
    torch.testing.assert_close(again, good)
    torch.testing.assert_close(load_file(path)["activations"], good)  # overwritten


def test_default_cache_dir_follows_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ODESTEER_CACHE", str(tmp_path))
    extract_activations(tiny_model("llama"), TEXTS[:2], 0, progress=False)
    assert len(list((tmp_path / "activations").glob("*.safetensors"))) == 1


def test_tiny_random_llama_chat_texts(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ODESTEER_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    lm = load_lm(TINY_RANDOM_LLAMA)
    chat = [
        lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        for q, a in [("Is it true?", "Yes."), ("What is 2+2?", "It is 4, of course.")]
    ]
    acts = extract_activations(lm, chat, lm.default_layer(), progress=False)
    assert acts.shape == (2, 64) and torch.isfinite(acts).all()
    ids = encode_texts(lm, chat)["input_ids"]
    assert (ids == lm.tokenizer.bos_token_id).sum(1).tolist() == [1, 1]  # no second BOS


def test_over_long_texts_keep_their_end(tmp_path, monkeypatch) -> None:
    lm = tiny_model("llama")
    monkeypatch.setattr(lm.tokenizer, "padding_side", "right")
    long_text = "word " * 700 + "the end"
    enc = encode_texts(lm, [long_text, "short"])
    assert enc["input_ids"].shape[1] == lm.max_length == 512
    assert enc["input_ids"][0, 0] == lm.tokenizer.bos_token_id
    assert lm.tokenizer.decode(enc["input_ids"][0, -10:]).endswith("the end")
    assert enc["attention_mask"][1].sum() < 5 and enc["position_ids"][0, -1] == 511
    acts = extract_activations(lm, [long_text, "short"], 1, progress=False, cache_dir=tmp_path)
    assert torch.isfinite(acts).all()


def test_bad_inputs(tmp_path) -> None:
    lm = tiny_model("llama")
    with pytest.raises(ValueError, match="texts is empty"):
        extract_activations(lm, [], 1, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="list of strings, got str"):
        extract_activations(lm, "one text", 1, cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got int"):
        extract_activations(lm, ["ok", 3], 1, cache_dir=tmp_path)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="layer 7 out of range"):
        extract_activations(lm, ["ok"], 7, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        extract_activations(lm, ["ok"], 1, batch_size=0, cache_dir=tmp_path)


def test_forward_stops_after_the_layer(tmp_path) -> None:
    lm = tiny_model("gpt2")
    seen: list[int] = []
    handle = lm.layers[-1].register_forward_hook(lambda *_: seen.append(1))
    try:
        extract_activations(lm, TEXTS, 0, progress=False, cache_dir=tmp_path)
    finally:
        handle.remove()
    assert seen == []


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_several_layers_in_one_pass_equal_one_layer_at_a_time(arch: str, tmp_path) -> None:
    lm = tiny_model(arch)
    layers = list(range(N_LAYERS - 1))  # the last hidden state has the final norm applied
    calls: list[int] = []
    handle = lm.layers[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        sweep = extract_layers(lm, TEXTS, layers, progress=False, cache_dir=tmp_path / "sweep")
    finally:
        handle.remove()
    assert len(calls) == 1  # one forward pass for every layer (TEXTS fit one batch)
    assert sorted(sweep) == layers
    for layer in layers:
        alone = extract_activations(lm, TEXTS, layer, progress=False, cache_dir=tmp_path / "one")
        torch.testing.assert_close(sweep[layer], alone, rtol=0, atol=0)
        torch.testing.assert_close(sweep[layer], _reference(lm, TEXTS, layer), rtol=1e-5, atol=1e-5)


def test_a_sweep_reuses_and_fills_the_single_layer_cache(tmp_path) -> None:
    lm = tiny_model("llama")
    first = extract_activations(lm, TEXTS, 1, progress=False, cache_dir=tmp_path)
    sweep = extract_layers(lm, TEXTS, [1, 2], progress=False, cache_dir=tmp_path)
    assert torch.equal(sweep[1], first)
    handle = lm.layers[0].register_forward_hook(lambda *_: pytest.fail("recomputed"))
    try:
        again = extract_activations(lm, TEXTS, 2, progress=False, cache_dir=tmp_path)
    finally:
        handle.remove()
    assert torch.equal(again, sweep[2])


def test_layer_sweep_reports_every_layer_and_finds_the_planted_one(tmp_path) -> None:
    from odesteer_core.concepts.concept import concept_from_texts
    from odesteer_core.pipeline.layer_sweep import parse_layers, sweep_layers

    lm = tiny_model("llama")
    pos = [f"Thank you so much, dear friend number {i}!" for i in range(12)]
    neg = [f"Go away, you awful pest number {i}." for i in range(12)]
    concept = concept_from_texts(pos, neg, name="planted")
    layers = parse_layers("all", lm.n_layers)
    sweep = sweep_layers(lm, concept, layers, progress=False, cache_dir=str(tmp_path))
    assert [r["layer"] for r in sweep.rows] == layers
    for row in sweep.rows:
        assert 0 <= row["accuracy"] <= 1 and row["log_loss"] > 0 and 0 <= row["ece"] <= 1
    assert sweep.best() in layers and "| layer |" in sweep.table()
    with pytest.raises(ValueError, match="layers 0-"):
        parse_layers(f"0,{lm.n_layers}", lm.n_layers)
    with pytest.raises(ValueError, match="whole numbers"):
        parse_layers("4;8", lm.n_layers)


def test_extraction_ignores_other_threads_forward_passes(tmp_path) -> None:
    # A shared model: while one user's concept is extracted, another user's forward pass on
    # another thread must neither be captured nor stopped.
    lm = tiny_model("llama")
    enc = lm.tokenizer("Hello there, how are you?", return_tensors="pt")
    with torch.inference_mode():
        expected = lm.model(**enc).logits
    results, errors = [], []
    started = threading.Event()

    def other_user():
        started.set()
        try:
            for _ in range(20):
                with torch.inference_mode():
                    results.append(lm.model(**enc).logits)
        except Exception as err:  # the bug: the extraction hook stopping this pass
            errors.append(err)

    thread = threading.Thread(target=other_user)
    thread.start()
    started.wait()
    for i in range(5):
        acts = extract_activations(lm, TEXTS, 1, progress=False, cache_dir=tmp_path / str(i))
        assert acts.shape == (len(TEXTS), lm.d_model)
    thread.join()
    assert not errors
    assert all(torch.equal(r, expected) for r in results)


@pytest.mark.parametrize(
    ("n_layers", "default", "expected"),
    [
        (4, 1, [0, 1, 2, 3]),
        (8, 3, list(range(8))),
        (32, 12, [0, 4, 9, 12, 13, 18, 22, 27, 31]),  # 8 spread from first to last, + default
        (28, 11, [0, 4, 8, 11, 12, 15, 19, 23, 27]),
    ],
)
def test_the_apps_sweep_spreads_at_most_eight_layers_and_keeps_the_default(
    n_layers, default, expected
) -> None:
    from odesteer_core.pipeline.layer_sweep import spread_layers

    assert spread_layers(n_layers, default, 8) == expected

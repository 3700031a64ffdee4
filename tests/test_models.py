"""Loading models and finding decoder layers: every architecture, the offline test model, errors."""

from __future__ import annotations

import json

import huggingface_hub.constants
import pytest
import torch
import transformers
from tiny_models import ARCHS, N_LAYERS, tiny_config, tiny_model

from odesteer_core.lm.layers import find_decoder_layers
from odesteer_core.lm.loading import TINY_RANDOM_LLAMA, LoadedLM, build_tiny_random_llama, load_lm
from odesteer_core.lm.tiny_model import build_tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # No network here; offline mode makes Hub look-ups fail at once instead of retrying ~25 s.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> LoadedLM:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ODESTEER_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        return load_lm(TINY_RANDOM_LLAMA)


@pytest.mark.parametrize("arch", ARCHS)
def test_find_decoder_layers_every_arch(arch: str) -> None:
    lm = tiny_model(arch)
    assert lm.n_layers == N_LAYERS == lm.model.config.num_hidden_layers
    assert all(type(layer) is type(lm.layers[0]) for layer in lm.layers)
    assert len({id(layer) for layer in lm.layers}) == N_LAYERS
    assert lm.d_model == 64 and lm.dtype == torch.float32 and lm.device.type == "cpu"
    assert lm.layer_device(N_LAYERS - 1).type == "cpu"


def test_find_decoder_layers_gemma3_multimodal() -> None:
    config = transformers.Gemma3Config(
        text_config=tiny_config("gemma3").to_dict(),
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        mm_tokens_per_image=4,
    )
    model = transformers.Gemma3ForConditionalGeneration(config)
    layers = find_decoder_layers(model)
    assert layers == list(model.model.language_model.layers)  # not the vision tower's


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)


class _OddModel(torch.nn.Module):
    """Decoder layers at an unusual path, next to a ModuleList of another length."""

    def __init__(self, with_config: bool) -> None:
        super().__init__()
        if with_config:
            self.config = transformers.LlamaConfig(num_hidden_layers=3)
        self.backbone = torch.nn.Module()
        self.backbone.blocks = torch.nn.ModuleList(_Block() for _ in range(3))
        self.heads = torch.nn.ModuleList(_Block() for _ in range(2))


def test_find_decoder_layers_generic_fallback() -> None:
    model = _OddModel(with_config=True)
    assert find_decoder_layers(model) == list(model.backbone.blocks)


def test_find_decoder_layers_explicit_path() -> None:
    model = _OddModel(with_config=False)
    assert find_decoder_layers(model, layers_path="backbone.blocks") == list(model.backbone.blocks)
    with pytest.raises(ValueError, match="layers_path='backbone.nope'"):
        find_decoder_layers(model, layers_path="backbone.nope")
    with pytest.raises(ValueError, match="layers_path='backbone'"):
        find_decoder_layers(model, layers_path="backbone")


def test_find_decoder_layers_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="layers_path") as err:
        find_decoder_layers(_OddModel(with_config=False))
    assert "_OddModel" in str(err.value)
    with pytest.raises(ValueError, match="layers_path"):
        find_decoder_layers(torch.nn.Linear(2, 2))


def test_tiny_random_llama_loads(tiny_llama: LoadedLM) -> None:
    lm = tiny_llama
    assert lm.name == TINY_RANDOM_LLAMA and lm.offline_test_model and lm.is_chat
    assert isinstance(lm.model, transformers.LlamaForCausalLM) and not lm.model.training
    assert (lm.n_layers, lm.d_model, lm.default_layer()) == (4, 64, 2)
    assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token == "<pad>"
    assert lm.model.config.vocab_size == len(lm.tokenizer)


def test_tiny_random_llama_tokenizer_round_trips(tiny_llama: LoadedLM) -> None:
    tok = tiny_llama.tokenizer
    text = 'Hello, World!  The quick brown fox — café 123\n\ttabs, émoji 🦊 and "quotes".'
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "Hi?"}], tokenize=False, add_generation_prompt=True
    )
    assert chat.startswith("<s>") and chat.endswith("<|assistant|>\n") and "Hi?" in chat


def test_tiny_random_llama_generates(tiny_llama: LoadedLM) -> None:
    enc = tiny_llama.tokenizer(
        ["Hello", "A longer prompt, here"], return_tensors="pt", padding=True
    )
    with torch.inference_mode():
        out = tiny_llama.model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape == (2, enc["input_ids"].shape[1] + 4)


def test_tiny_random_llama_is_built_once(tmp_path) -> None:
    path = build_tiny_random_llama(tmp_path / "tiny")
    weights = path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert build_tiny_random_llama(tmp_path / "tiny") == path
    assert weights.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no temp folder left behind
    (path / "odesteer_tiny_version").write_text("0")  # an older recipe is rebuilt
    build_tiny_random_llama(path)
    assert (path / "odesteer_tiny_version").read_text() != "0"


def test_load_lm_options(tiny_llama: LoadedLM, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ODESTEER_CACHE", str(tmp_path))
    build_tiny_random_llama(tmp_path / TINY_RANDOM_LLAMA)
    lm = load_lm(TINY_RANDOM_LLAMA, dtype="bfloat16", device="cpu")
    assert lm.dtype == torch.bfloat16
    assert load_lm(TINY_RANDOM_LLAMA, device_map="cpu").device.type == "cpu"
    local = load_lm(str(tmp_path / TINY_RANDOM_LLAMA))  # a local folder, same files
    assert not local.offline_test_model and local.is_chat
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        load_lm(TINY_RANDOM_LLAMA, dtype="float8")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        load_lm(TINY_RANDOM_LLAMA, device="gpu0")
    with pytest.raises(ValueError, match="unknown device 'banana'"):
        load_lm(TINY_RANDOM_LLAMA, device_map="banana")
    with pytest.raises(ValueError, match="not both"):
        load_lm(TINY_RANDOM_LLAMA, device="cpu", device_map="auto")


def test_check_layer(tiny_llama: LoadedLM) -> None:
    assert tiny_llama.check_layer(3) == 3
    with pytest.raises(
        ValueError, match=r"layer 40 out of range: this model has 4 decoder layers \(0–3\)"
    ):
        tiny_llama.check_layer(40)
    with pytest.raises(ValueError, match="layer -1 out of range"):
        tiny_llama.check_layer(-1)
    with pytest.raises(TypeError, match="layer must be an int"):
        tiny_llama.check_layer("2")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n_layers", "expected"), [(1, 0), (4, 2), (28, 11), (32, 13), (40, 16)])
def test_default_layer(n_layers: int, expected: int) -> None:
    lm = LoadedLM(None, None, "x", None, [torch.nn.Identity()] * n_layers, False)  # type: ignore[arg-type]
    assert lm.default_layer() == expected


def test_unknown_model_id_says_what_to_do() -> None:
    with pytest.raises(ValueError) as err:
        load_lm("odesteer-test/no-such-model-xyz")
    message = str(err.value)
    assert "could not load 'odesteer-test/no-such-model-xyz'" in message
    assert "--model /local/path" in message and "tiny-random-llama" in message


def test_unreachable_hub_fails_at_once_from_the_local_cache_only(monkeypatch) -> None:
    """Offline mode not set, but no route to the Hub: no retries, the HF cache or a clear error."""
    import odesteer_core.lm.loading as models

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://hub.odesteer.invalid")
    assert not models.hub_reachable()  # .invalid never resolves (RFC 2606)
    seen = []
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("local_files_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(models.AutoConfig, "from_pretrained", spy)
    with pytest.raises(ValueError, match="not in the local cache") as err:
        load_lm("odesteer-test/no-such-model-xyz")
    assert seen == [True] and "tiny-random-llama" in str(err.value)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.odesteer.invalid:3128")
    assert models.hub_reachable()  # behind a proxy only the Hub client can tell
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert not models.hub_reachable()


def test_missing_local_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_lm(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="could not load the local folder"):
        load_lm(str(tmp_path))  # exists, but no config.json


def test_remote_code_is_refused(tmp_path) -> None:
    config = {
        "model_type": "odesteer_custom",
        "auto_map": {
            "AutoConfig": "configuration_custom.CustomConfig",
            "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM",
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="refused by default") as err:
        load_lm(str(tmp_path))
    assert "trust_remote_code=True" in str(err.value)


def test_unknown_model_type(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "odesteer_unknown_arch"}))
    with pytest.raises(ValueError, match="architecture this transformers version does not know"):
        load_lm(str(tmp_path))


def test_not_a_causal_lm(tmp_path) -> None:
    transformers.ViTConfig(num_hidden_layers=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a causal language model"):
        load_lm(str(tmp_path))


def test_folder_without_weights(tmp_path) -> None:
    tiny_config("llama").save_pretrained(tmp_path)
    build_tiny_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="could not load the local folder"):
        load_lm(str(tmp_path))


def test_model_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="Hub id or a local folder"):
        load_lm("  ")

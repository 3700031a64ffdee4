"""Loading a causal LM: device, dtype, errors that say what to do, and the `LoadedLM` it returns.

`load_lm` is the one entry point: it resolves device and dtype once, turns loading failures into
`ValueError`s that say what to do, and returns a `LoadedLM` holding the untouched HF model, its
tokenizer and its decoder layers (found by `layers.py`: the modules whose outputs are the
residual stream we steer). The offline test model `tiny-random-llama` is built locally by
`tiny_model.py` (random weights, a byte-level BPE tokenizer trained in milliseconds on a built-in
paragraph) and then loaded through the very same `from_pretrained` path as a Hub model.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import huggingface_hub.constants
import torch
from huggingface_hub.errors import GatedRepoError, HFValidationError, RevisionNotFoundError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

from odesteer_core.lm.cpu_kernels import eligible_layers, onednn_linear
from odesteer_core.lm.layers import find_decoder_layers
from odesteer_core.lm.presets import TINY_TRAINED_LLAMA, resolve_preset
from odesteer_core.lm.tiny_model import TINY_RANDOM_LLAMA, build_tiny_random_llama
from odesteer_core.method.kernels import onednn_available

__all__ = [
    "TINY_RANDOM_LLAMA",
    "TINY_TRAINED_LLAMA",
    "LoadedLM",
    "build_tiny_random_llama",
    "cache_root",
    "hub_reachable",
    "load_lm",
]

_DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedLM:
    """A loaded causal LM, its tokenizer and its decoder layers.

    Attributes:
        model: The Hugging Face model, in eval mode, never wrapped or left changed.
        tokenizer: Its tokenizer (pad token set, left padding and left truncation).
        name: The model id or folder the user asked for.
        revision: The Hub revision, or None for the default branch.
        layers: The decoder layers, in order; their outputs are the residual stream.
        is_chat: Whether the tokenizer has a chat template.
        offline_test_model: True for `tiny-random-llama`, whose outputs are meaningless.
        notice: What the app says about a preset model (``presets.py``), else None.
        onednn: Run float32 CPU linear layers through oneDNN during this project's forward
            passes (``cpu_kernels``).
    """

    model: PreTrainedModel = field(repr=False)
    tokenizer: PreTrainedTokenizerBase = field(repr=False)
    name: str
    revision: str | None
    layers: list[torch.nn.Module] = field(repr=False)
    is_chat: bool
    offline_test_model: bool = False
    onednn: bool = True
    notice: str | None = None  # one line about a preset model, for the page and the console

    def cpu_kernels(self) -> contextlib.AbstractContextManager[int]:
        """Context for this project's forward passes: inside it the model's float32 CPU linear
        layers run on oneDNN (``cpu_kernels.onednn_linear``; a no-op if ``onednn`` is False)."""
        return onednn_linear(self.model, enabled=self.onednn)

    @property
    def onednn_layers(self) -> int:
        """How many linear layers ``cpu_kernels`` runs on oneDNN (0 on GPU or when opted out)."""
        if not self.onednn or not onednn_available():
            return 0
        return len(eligible_layers(self.model))

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    @property
    def device(self) -> torch.device:
        """Device of the input embeddings: where input ids must go."""
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    @property
    def max_length(self) -> int | None:
        """Longest input the model accepts in tokens, or None when unbounded or unknown."""
        config = self.model.config.get_text_config()
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        value = getattr(self.tokenizer, "model_max_length", None)
        return value if isinstance(value, int) and 0 < value < 1_000_000 else None

    def default_layer(self) -> int:
        """The layer at about 40 % of depth, where the paper steers."""
        return min(max(round(0.4 * self.n_layers), 0), self.n_layers - 1)

    def check_layer(self, layer: int) -> int:
        """Return `layer` if it is a valid 0-based decoder layer index, else raise."""
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise TypeError(f"layer must be an int, got {layer!r} ({type(layer).__name__})")
        if not 0 <= layer < self.n_layers:
            raise ValueError(
                f"layer {layer} out of range: this model has {self.n_layers} decoder layers "
                f"(0–{self.n_layers - 1})"
            )
        return layer

    def layer_device(self, layer: int) -> torch.device:
        """Device of a decoder layer's parameters (they differ under `device_map="auto"`)."""
        param = next(self.layers[self.check_layer(layer)].parameters(), None)
        return param.device if param is not None else self.device


def cache_root() -> Path:
    """Root of the on-disk cache: `$ODESTEER_CACHE`, else `~/.cache/odesteer_studio`."""
    env = os.environ.get("ODESTEER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "odesteer_studio"


def load_lm(
    model: str,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    device_map: str | None = None,
    layers_path: str | None = None,
    onednn: bool = True,
) -> LoadedLM:
    """Load a causal LM from the Hub, a local folder, or the offline test model.

    Args:
        model: Hub id (`"meta-llama/Llama-3.1-8B-Instruct"`), local folder, or a preset:
            `"tiny-trained-llama"` (the shipped demo model) or `"tiny-random-llama"` (tests).
        device: `"cuda"`, `"cuda:1"`, `"cpu"`, ...; None picks CUDA when available.
        dtype: `"float32"`, `"bfloat16"`, `"float16"`, a `torch.dtype`, or None/`"auto"`
            (bfloat16 on CUDA when supported, float16 on older GPUs, float32 on CPU).
        revision: Hub branch, tag or commit.
        trust_remote_code: Allow running model code from the repository.
        device_map: E.g. `"auto"` to spread a model too big for one GPU (accelerate);
            exclusive with `device`.
        layers_path: Dotted path to the decoder-layer ModuleList, for unknown architectures.
        onednn: Run float32 linear layers on CPU through oneDNN during generation, extraction
            and scoring (`cpu_kernels.py`: decoding 1.6x faster on the CPU measured); no effect
            on GPU layers or other dtypes.

    Returns:
        The loaded model, in eval mode.

    Raises:
        ValueError: The model cannot be found, needs refused remote code, or is not a causal LM.
    """
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a Hub id or a local folder, got {model!r}")
    if device is not None and device_map is not None:
        raise ValueError(
            f"pass either device={device!r} or device_map={device_map!r}, not both "
            "(device_map='auto' places the layers itself)"
        )
    if model.startswith(("/", "./", "../", "~", ".\\")) and not Path(model).expanduser().is_dir():
        raise ValueError(
            f"local folder '{model}' does not exist or is not a folder; check the path, or pass "
            "a Hub id such as Qwen/Qwen2.5-0.5B-Instruct"
        )
    single_device = device_map is not None and device_map not in _DEVICE_MAP_STRATEGIES
    placement = _resolve_device(device_map if single_device else device)  # raises if unknown
    preset = resolve_preset(model, cache_root())  # a short name such as tiny-trained-llama
    source = str(preset.folder) if preset is not None else model
    torch_dtype = _resolve_dtype(dtype, placement)
    options = {"revision": revision, "trust_remote_code": trust_remote_code}
    if not Path(source).expanduser().is_dir() and not hub_reachable():
        # Without this, every missing file costs five retries (about 25 s) before failing.
        options["local_files_only"] = True  # the local HF cache, or a clear error at once

    try:
        config = AutoConfig.from_pretrained(source, **options)
    except (OSError, ValueError) as err:
        raise _friendly_load_error(model, err) from err
    _check_causal_lm(model, config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
        hf_model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, device_map=device_map or placement, **options
        )
    except (OSError, ValueError) as err:
        raise _friendly_load_error(model, err) from err
    except torch.cuda.OutOfMemoryError as err:
        raise ValueError(
            f"'{model}' does not fit in GPU memory with dtype {torch_dtype}. Try dtype='bfloat16', "
            "device_map='auto' (spreads it over GPUs and CPU), or a smaller model"
        ) from err
    hf_model.eval()
    _prepare_tokenizer(tokenizer, model)
    return LoadedLM(
        model=hf_model,
        tokenizer=tokenizer,
        name=model,
        revision=revision,
        layers=find_decoder_layers(hf_model, layers_path=layers_path),
        is_chat=getattr(tokenizer, "chat_template", None) is not None,
        offline_test_model=preset is not None and preset.offline_test_model,
        onednn=onednn,
        notice=preset.notice if preset is not None else None,
    )


def _auto_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_device(device: str | None) -> torch.device:
    try:
        resolved = torch.device(device if device is not None else _auto_device())
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N' (device_map also takes "
            f"{', '.join(_DEVICE_MAP_STRATEGIES)})"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for CUDA, but no CUDA GPU is available; use 'cpu'"
        )
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join([*_DTYPES, 'auto'])}")


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline mode is set or the Hub's host cannot be reached within ``timeout``."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # only the proxy knows; let the Hub client try
    host = urlparse(huggingface_hub.constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _check_causal_lm(model: str, config: PretrainedConfig) -> None:
    remote = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING and not remote:
        raise ValueError(
            f"'{model}' is a {config.model_type!r} model, not a causal language model "
            "(transformers has no AutoModelForCausalLM for it). Pick a decoder-only base or chat "
            "model, e.g. Qwen/Qwen2.5-0.5B-Instruct"
        )


def _friendly_load_error(model: str, err: Exception) -> ValueError:
    """Turn a loading exception into a ValueError that says what to do."""
    causes = _exception_chain(err)
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if any(isinstance(e, GatedRepoError) for e in causes) or "gated repo" in str(err):
        return ValueError(
            f"'{model}' is a gated model: accept its licence on https://huggingface.co/{model} "
            "and log in with `hf auth login` (or set HF_TOKEN)"
        )
    if any(isinstance(e, RevisionNotFoundError) for e in causes):
        return ValueError(f"revision not found for '{model}'; check the branch, tag or commit id")
    if "trust_remote_code" in str(err):
        return ValueError(
            f"'{model}' needs to run custom code from its repository, which is refused by default. "
            "If you trust that code, allow it with trust_remote_code=True (--trust-remote-code)"
        )
    if isinstance(err, ValueError) and "does not recognize this architecture" in str(err):
        return ValueError(
            f"'{model}' uses an architecture this transformers version does not know; upgrade "
            f"transformers or allow its code with trust_remote_code=True. Details: {detail}"
        )
    if Path(model).expanduser().is_dir():
        return ValueError(
            f"could not load the local folder '{model}': it must hold a Hugging Face model "
            f"(config.json, weights, tokenizer files). Details: {detail}"
        )
    if isinstance(err, OSError) or any(isinstance(e, HFValidationError) for e in causes):
        return ValueError(
            f"could not load '{model}' from the Hugging Face Hub (offline and not in the local "
            "cache, or an unknown id). Check the id and the network, pass a "
            "local folder with --model /local/path, or use the offline test model --model "
            f"tiny-random-llama. Details: {detail}"
        )
    return ValueError(f"could not load '{model}': {detail}")


def _exception_chain(err: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, model: str) -> None:
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token or tokenizer.bos_token
        if fallback is None:
            raise ValueError(
                f"the tokenizer of '{model}' has no pad, eos, unk or bos token to pad batches with"
            )
        tokenizer.pad_token = fallback
    tokenizer.padding_side = "left"  # generation appends on the right
    tokenizer.truncation_side = "left"  # keep the end of over-long texts: it is what we read

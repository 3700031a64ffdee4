"""The evaluated model, loaded only when some work needs it.

A rerun whose cells are all stored must not spend minutes loading an 8B model: the steered
layer, which every key depends on, comes from the model's config alone (``n_layers``), and the
weights load on first use (``LazyModel.lm``). Under several processes each loads its own copy
on its own GPU; ``device_map="auto"`` spreads one large model over every GPU of one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from odesteer_core.lm.loading import LoadedLM, cache_root, load_lm
from odesteer_core.lm.presets import resolve_preset
from odesteer_core.lm.tiny_model import TINY_RANDOM_LLAMA

__all__ = ["LazyModel", "ModelOptions"]


@dataclass(frozen=True)
class ModelOptions:
    """Which model, and where (``device_map="auto"`` spreads a large one over the GPUs)."""

    name: str
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    trust_remote_code: bool = False

    @property
    def identity(self) -> dict:
        """What makes results of one folder comparable: the model, revision and dtype."""
        return {"model": self.name, "revision": self.revision, "dtype": self.dtype or "auto"}


class LazyModel:
    """The model of ``options``: its depth now (from its config), its weights on first use."""

    def __init__(self, options: ModelOptions, device: str | None = None) -> None:
        """``device``: this process's own GPU when several processes share a machine (it wins
        over ``options.device``)."""
        self.options, self.device = options, device or options.device
        self._lm: LoadedLM | None = None
        self.n_layers = self._config_layers()

    def _config_layers(self) -> int | None:
        from transformers import AutoConfig

        preset = resolve_preset(self.options.name, cache_root())
        source = str(preset.folder) if preset is not None else self.options.name
        try:
            config = AutoConfig.from_pretrained(
                source, revision=self.options.revision,
                trust_remote_code=self.options.trust_remote_code,
            )  # fmt: skip
        except Exception:
            return None  # load_lm says what is wrong, with what to do
        value = getattr(config.get_text_config(), "num_hidden_layers", None)
        return value if isinstance(value, int) and value > 0 else None

    @property
    def offline_test_model(self) -> bool:
        return self.options.name == TINY_RANDOM_LLAMA

    @property
    def lm(self) -> LoadedLM:
        if self._lm is None:
            o = self.options
            self._lm = load_lm(
                o.name, device=None if o.device_map else self.device, dtype=o.dtype,
                revision=o.revision, trust_remote_code=o.trust_remote_code,
                device_map=o.device_map,
            )  # fmt: skip
            self.n_layers = self._lm.n_layers
        return self._lm

    def layer(self, requested: int | None) -> int:
        """The steered layer: ``requested``, or about 40 % of depth (``LoadedLM.default_layer``)."""
        n = self.n_layers if self.n_layers is not None else self.lm.n_layers
        if requested is None:
            return min(max(round(0.4 * n), 0), n - 1)
        if not 0 <= requested < n:
            raise ValueError(f"--layer {requested} out of range: this model has {n} layers")
        return requested

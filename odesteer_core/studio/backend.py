"""The app's backend, free of Gradio: which models may load, shared models and fitted concepts.

One ``Studio`` serves every user of a running app. Models and fitted concepts are shared (they
are read-only once built); what belongs to one user (the last comparison, the chosen token) lives
in that user's ``gr.State`` (``ui/handlers.py``). Loading and fitting take a per-key lock, so
two users asking for the same concept at once fit it once; generation needs no lock, because each
comparison's steering hook edits only the forward passes of the thread that registered it.

Public deployments (``SPACE_ID`` set by Hugging Face Spaces, or ``ODESTEER_PUBLIC=1``) load only
the models of an allow-list (``ODESTEER_ALLOWED_MODELS``, comma-separated, or ``DEFAULT_ALLOWED``)
and never run a repository's own code.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from odesteer_core.concepts.concept import Concept, concept_from_texts
from odesteer_core.concepts.files import load_concept_file
from odesteer_core.concepts.sources import list_concepts, load_named_concept
from odesteer_core.lm.loading import TINY_RANDOM_LLAMA, TINY_TRAINED_LLAMA, LoadedLM, load_lm
from odesteer_core.pipeline import FittedConcept, fit_concept
from odesteer_core.pipeline.layer_sweep import LayerSweep, spread_layers, sweep_layers
from odesteer_core.view.base import Projector
from odesteer_core.view.registry import fit_projector

__all__ = [
    "CUSTOM",
    "DEFAULT_ALLOWED",
    "DEFAULT_MODEL",
    "Studio",
    "allowed_models",
    "concept_choices",
    "is_public",
]

# Small enough for a free CPU Space (2 vCPU: a few tokens per second for three arms), instruct-
# tuned so steering acts on real answers, and well known; on a GPU pick a bigger one.
DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
DEFAULT_ALLOWED = (
    DEFAULT_MODEL,
    "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "google/gemma-2-2b-it",
    TINY_TRAINED_LLAMA,
    TINY_RANDOM_LLAMA,
)
logger = logging.getLogger(__name__)
T = TypeVar("T")
CUSTOM = "custom"
DEFAULT_CONCEPT = "sentiment"  # the picker's first choice: the clearest effect to read
MAX_MODELS = 2  # models kept in memory at once (the start-up model is never evicted)
MAX_FITTED = 8  # fitted concepts kept in memory
MAX_SWEEP_LAYERS = 8  # the app's layer sweep: at most this many layers, spread over the depth


def is_public() -> bool:
    """Whether this is a public deployment (a Hugging Face Space, or ``ODESTEER_PUBLIC=1``)."""
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("ODESTEER_PUBLIC", "") == "1"


def allowed_models() -> tuple[str, ...] | None:
    """Models this deployment may load: the allow-list, or None (any) on a private machine."""
    env = os.environ.get("ODESTEER_ALLOWED_MODELS", "")
    listed = tuple(m.strip() for m in env.split(",") if m.strip())
    if listed:
        return listed
    return DEFAULT_ALLOWED if is_public() else None


def upload_root() -> Path:
    """Where Gradio stores this app's uploads (``GRADIO_TEMP_DIR``, default the temp folder)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def check_upload(path: object) -> str:
    """An upload's path, if it may be read: on a public deployment only files that Gradio
    received (under ``upload_root``); on a private machine any file of the user's."""
    if not isinstance(path, str):
        raise ValueError("The upload must be a file sent through the page's upload box.")
    if is_public():
        root = upload_root().resolve()
        if not Path(path).resolve().is_relative_to(root):
            raise ValueError("Upload the concept file through the page's upload box.")
    return path


def concept_choices() -> list[str]:
    """Concept names for the picker: ``DEFAULT_CONCEPT`` first, the other built-ins,
    ``truthfulqa``, then ``custom``."""
    names = [row["name"] for row in list_concepts()]
    first = [DEFAULT_CONCEPT] if DEFAULT_CONCEPT in names else []
    return first + [n for n in names if n != DEFAULT_CONCEPT] + [CUSTOM]


@dataclass
class _Fitted:
    fitted: FittedConcept
    projectors: dict[str, Projector] = field(default_factory=dict)


class Studio:
    """Shared models and fitted concepts for every user of one app.

    Args:
        model: The model loaded at start (Hub id, local folder or ``tiny-random-llama``).
        truthfulqa_csv: Local TruthfulQA CSV for the ``truthfulqa`` concept (else the Hub).
        device, dtype: As in ``load_lm`` (None: auto).
        cache_dir: Activation cache folder (None: the default cache).
        warm_projections: Projections fitted when a concept is fitted, so that the first plot
            is fast. The exact views take milliseconds; UMAP takes seconds (and its first use
            in a process compiles numba code), so it is fitted when a user first asks for it.
    """

    def __init__(
        self,
        model: str,
        *,
        truthfulqa_csv: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        cache_dir: str | None = None,
        warm_projections: tuple[str, ...] = ("plane", "pca"),
    ) -> None:
        self.truthfulqa_csv, self.device, self.dtype = truthfulqa_csv, device, dtype
        self.cache_dir, self.warm_projections = cache_dir, warm_projections
        self.default_model = model
        self._models: OrderedDict[str, LoadedLM] = OrderedDict()
        self._fitted: OrderedDict[tuple, _Fitted] = OrderedDict()
        self._sweeps: OrderedDict[tuple, LayerSweep] = OrderedDict()
        # One lock per key while some thread uses it: weak values, so the dict does not grow
        # with every custom concept ever fitted.
        self._locks: weakref.WeakValueDictionary[tuple, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()
        self.model(model)

    # -- models --------------------------------------------------------------------------
    def check_model_allowed(self, name: str) -> str:
        """Return the stripped name if this deployment may load it, else raise ValueError."""
        name = (name or "").strip()
        if not name:
            raise ValueError(
                "Model name is empty: give a Hub id such as Qwen/Qwen2.5-0.5B-Instruct."
            )
        allowed = allowed_models()
        if allowed is not None and name not in allowed and name != self.default_model:
            raise ValueError(
                f"This deployment only loads these models: {', '.join(allowed)}. Run the app "
                "on your own machine to load others."
            )
        return name

    def model(self, name: str) -> LoadedLM:
        """The loaded model ``name``, loading it once (a clear ValueError if it cannot load)."""
        name = self.check_model_allowed(name)
        with self._lock(("model", name)):
            if name not in self._models:
                lm = load_lm(name, device=self.device, dtype=self.dtype, trust_remote_code=False)
                with self._guard:
                    self._models[name] = lm
                    evictable = [m for m in self._models if m != self.default_model]
                    while len(self._models) > MAX_MODELS and evictable:
                        self._models.pop(evictable.pop(0))
            with self._guard:
                self._models.move_to_end(name)
                return self._models[name]

    # -- concepts ------------------------------------------------------------------------
    def concept(
        self,
        name: str,
        *,
        positive_text: str = "",
        negative_text: str = "",
        upload: str | None = None,
    ) -> Concept:
        """A built-in concept, ``truthfulqa``, or a custom one from pasted lines or an upload.

        Raises:
            ValueError: unknown name, too few lines, an unreadable, binary, non-UTF-8 or
                oversized upload (the message says what to fix).
        """
        if name != CUSTOM:  # a name, never a path: the web app reads no server file
            return load_named_concept(name, truthfulqa_csv=self.truthfulqa_csv, split="train")
        if upload:
            return load_concept_file(check_upload(upload), shown_as=Path(upload).name)
        positive = [line for line in (positive_text or "").splitlines() if line.strip()]
        negative = [line for line in (negative_text or "").splitlines() if line.strip()]
        if not positive and not negative:
            raise ValueError(
                "Custom concept is empty: paste positive and negative examples (one per line, "
                "at least 8 each) or upload a JSONL/CSV file."
            )
        return concept_from_texts(positive, negative, name=CUSTOM)

    def fit(
        self,
        lm: LoadedLM,
        concept: Concept,
        *,
        layer: int | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> FittedConcept:
        """The concept fitted at ``layer`` of ``lm`` (default layer if None), fitting it once.

        Fitting extracts activations (cached on disk), fits ODESteer and warms the projections.
        """
        layer = lm.default_layer() if layer is None else lm.check_layer(int(layer))
        key = (lm.name, lm.revision, layer, concept.fingerprint(), concept.name)
        with self._lock(key):
            entry = self._fitted.get(key)
            if entry is None:
                report = progress or (lambda frac, msg: None)
                report(0.05, f"extracting activations at layer {layer}")
                fitted = fit_concept(
                    lm, concept, layer=layer, progress=False, cache_dir=self.cache_dir
                )
                entry = _Fitted(fitted)
                for kind in self.warm_projections:
                    report(0.7, f"fitting the {kind} projection")
                    t0 = time.perf_counter()
                    entry.projectors[kind] = fit_projector(kind, fitted)
                    fitted.timing[f"projection_{kind}_s"] = time.perf_counter() - t0
                with self._guard:
                    self._fitted[key] = entry
                    while len(self._fitted) > MAX_FITTED:
                        self._fitted.popitem(last=False)
            with self._guard:
                self._fitted.move_to_end(key)
        return entry.fitted

    def warm_up(self, concept: str) -> threading.Thread:
        """Fit ``concept`` on the start-up model in a background thread, so the first click is
        fast; a failure is logged and the concept fits on first use instead."""

        def work() -> None:
            try:
                self.fit(self.model(self.default_model), self.concept(concept))
            except Exception as err:  # the app keeps serving; the click will report it
                logger.warning("warming up concept %r failed: %s", concept, err)

        thread = threading.Thread(target=work, name="odesteer-warm-up", daemon=True)
        thread.start()
        return thread

    def sweep(self, lm: LoadedLM, concept: Concept) -> LayerSweep:
        """The concept's barrier fitted at up to ``MAX_SWEEP_LAYERS`` layers spread over the
        depth of ``lm`` (the default layer among them), one extraction pass; computed once."""
        layers = spread_layers(lm.n_layers, lm.default_layer(), MAX_SWEEP_LAYERS)
        key = ("sweep", lm.name, lm.revision, concept.fingerprint(), concept.name)
        with self._lock(key):
            with self._guard:
                done = self._sweeps.get(key)
            if done is None:
                done = sweep_layers(lm, concept, layers, progress=False, cache_dir=self.cache_dir)
                with self._guard:
                    self._sweeps[key] = done
                    while len(self._sweeps) > MAX_FITTED:
                        self._sweeps.popitem(last=False)
        return done

    def projector(self, fitted: FittedConcept, kind: str) -> Projector:
        """The ``kind`` projection of a fitted concept's clouds, fitted once."""
        with self._guard:
            entry = next((e for e in self._fitted.values() if e.fitted is fitted), None)
        if entry is None:  # evicted meanwhile, or fitted outside the studio
            return fit_projector(kind, fitted)
        with self._lock(("projection", id(entry), kind)):
            if kind not in entry.projectors:
                entry.projectors[kind] = fit_projector(kind, fitted)
            return entry.projectors[kind]

    def _lock(self, key: tuple) -> threading.Lock:
        """The lock of ``key``; callers hold a reference while using it (``with self._lock(k):``)."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

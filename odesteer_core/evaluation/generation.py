"""Generation tasks: generate with each method, save JSONL, score with judge-free metrics.

The prompts come from a ``PromptSource`` (a task of the paper or a local file, see ``prompts.py``)
and the arms from a ``Sweep``. Every method and strength is one arm of ``generate_arms``: the arms
of a prompt share one batch and the sampling noise, so they differ only by steering. Judge-free
metrics: distinct-n over whitespace words, and perplexity under the unsteered model (its own
generated token ids, no hook). A ``Scorer`` (a classifier or reward model the user names) scores
the texts through transformers' ``pipeline``. TruthfulQA data with the TruthfulQA concept runs the
paper's 2-fold protocol.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from odesteer_core.evaluation.prompts import (
    GEN_TASKS,
    PromptFold,
    PromptSet,
    PromptSource,
    load_prompts,
)
from odesteer_core.evaluation.specs import Scorer, Sweep, check_writable
from odesteer_core.evaluation.truthfulqa_mc import continuation_perplexities
from odesteer_core.lm.generate import generate_arms
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.lm.tokens import token_ids
from odesteer_core.pipeline import FittedConcept

__all__ = [
    "GEN_TASKS",
    "PAPER_SAMPLING",
    "GenEvaluation",
    "classifier_scores",
    "distinct_n",
    "evaluate_generation",
    "load_prompts",
]

PAPER_SAMPLING = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of whitespace-split words, pooled over ``texts``.

    N-grams never cross from one text into the next. A text of fewer than ``n`` words counts as
    one n-gram of all its words, so a short answer still counts, once: with every text at least
    ``n`` words long this is the usual distinct-n. A text without a word adds nothing; when no
    text has a word the result is 0.0 (nothing generated, nothing distinct), never NaN.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    grams = []
    for text in texts:
        words = text.split()
        starts = max(len(words) - n + 1, 1) if words else 0
        grams += [tuple(words[i : i + n]) for i in range(starts)]
    return len(set(grams)) / len(grams) if grams else 0.0


def classifier_scores(
    texts: Sequence[str],
    model: str,
    *,
    label: str | None = None,
    prompts: Sequence[str] | None = None,
    device: str | None = None,
    batch_size: int = 8,
) -> list[float]:
    """Score texts with a text-classification or reward model through transformers' ``pipeline``.

    Args:
        texts: The texts to score.
        model: Hub id or local folder of a sequence-classification model.
        label: The label whose probability is the score (e.g. ``"toxic"``); None for a reward
            model with a single output, whose raw logit is the score.
        prompts: Score ``(prompt, text)`` pairs instead of the texts alone (reward models).
        device: Where the scorer runs (``"cpu"``, ``"cuda"``).
        batch_size: Texts per forward pass.
    """
    from transformers import pipeline  # only needed when a scorer is named

    try:
        clf = pipeline("text-classification", model=model, device=device)
    except Exception as exc:  # Hub, format and architecture errors alike
        raise ValueError(
            f"could not load the scorer {model!r} as a text-classification model "
            f"({type(exc).__name__}: {exc}); name a Hub id or local folder of a "
            "sequence-classification (e.g. toxicity) or reward model"
        ) from exc
    config = clf.model.config
    names = [config.id2label[i] for i in range(config.num_labels)]
    options = {"top_k": None, "truncation": True, "batch_size": batch_size}
    if label is None and config.num_labels != 1:
        raise ValueError(f"the scorer {model!r} has labels {names}; pick one with --scorer-label")
    if label is not None and label not in names:
        raise ValueError(f"the scorer {model!r} has no label {label!r}; its labels are {names}")
    if label is None:
        options["function_to_apply"] = "none"  # a reward model: the raw logit is the reward
    inputs = list(texts)
    if prompts is not None:
        inputs = [{"text": p, "text_pair": t} for p, t in zip(prompts, texts)]
    outputs = clf(inputs, **options)
    key = names[0] if label is None else label
    return [float(next(d["score"] for d in out if d["label"] == key)) for out in outputs]


@dataclass
class GenEvaluation:
    """Generations (one row per prompt and arm) and their per-method summary per strength (or
    target confidence)."""

    rows: list[dict]
    sweep: list[dict]  # [{"strength": s, "results": {method: metrics}}] ("target": p instead)
    out: str | None = None
    settings: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The summary (rows left out: they are in the JSONL file), NaN written as null."""
        head = {k: v for k, v in self.sweep[0].items() if k in ("results", "strength", "target")}
        rest = {k: v for k, v in asdict(self).items() if k != "rows"}
        return _clean({**head, "n_rows": len(self.rows), **rest})


def _clean(value: object) -> object:
    """NaN and inf become None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return [_clean(v) for v in value] if isinstance(value, list) else value


def _generate(
    lm: LoadedLM,
    fold: PromptFold,
    fitted: FittedConcept | None,
    sweep: Sweep,
    settings: GenerationSettings,
    bar: tqdm,
) -> list[dict]:
    """One row per prompt and arm; all arms of a prompt in one batch."""
    arms = sweep.arms(fitted)
    judge = fitted.odesteer if fitted is not None else None
    layer, rows = sweep.layer_of(lm), []
    for i, prompt in enumerate(fold.prompts):
        seeded = GenerationSettings(**{**settings.to_dict(), "seed": settings.seed + i})
        *_, comparison = generate_arms(
            lm, prompt, list(arms.values()), layer=layer, judge=judge, settings=seeded
        )
        context = token_ids(lm, comparison.formatted_prompt)
        for (method, point), r in zip(arms, comparison.arms):
            ids = r.token_ids[:-1] if r.finished else r.token_ids  # the eos is not text
            row = {"fold": fold.fold, "prompt": prompt, "method": method, sweep.kind: point}
            row.update(T=r.T, steps=r.steps, text=r.text, token_ids=r.token_ids)
            row["mean_barrier"] = r.mean_barrier  # the fitted ODESteer barrier h, per token
            row.update({f"distinct_{n}": distinct_n([r.text], n) for n in (1, 2, 3)})
            rows.append({**row, "_pair": (context, ids)})
        bar.update(1)
    return rows


def _rows_of(rows: list[dict], method: str, point: float | None, kind: str) -> list[dict]:
    return [r for r in rows if r["method"] == method and r[kind] == point]


def _summary(rows: list[dict], method: str, point: float | None, kind: str) -> dict:
    """The metrics of one arm's rows (``rows`` are ``_clean``: None where NaN)."""
    mine = _rows_of(rows, method, point, kind)
    texts = [r["text"] for r in mine]
    summary = {
        "n": len(mine),
        "empty": sum(not t.split() for t in texts),  # texts without a word
        **{f"distinct_{n}": distinct_n(texts, n) for n in (1, 2, 3)},
    }
    for key in ("perplexity", "mean_barrier", "score"):
        finite = [r[key] for r in mine if r.get(key) is not None]
        if any(key in r for r in mine):
            summary[key] = sum(finite) / len(finite) if finite else float("nan")
    return summary


def _empty_notices(rows: list[dict], sweep: Sweep) -> list[str]:
    """Say which arms generated texts without a word (every one, or some)."""
    notices = []
    for method, point in sweep.arm_keys():
        mine = _rows_of(rows, method, point, sweep.kind)
        empty = sum(not r["text"].split() for r in mine)
        name = method if point is None else f"{method} at {sweep.kind} {point:g}"
        if mine and empty == len(mine):
            notices.append(
                f"{name} produced no text in any of its {empty} generations (each ended at once "
                "or wrote only spaces): its distinct-n is 0 and its perplexity may be n/a."
            )
        elif empty:
            notices.append(
                f"{name}: {empty} of its {len(mine)} generations are empty; distinct-n counts "
                "only the others."
            )
    return notices


def _prompt_set(prompts: PromptSource | PromptSet | str, sweep: Sweep | None) -> PromptSet:
    if isinstance(prompts, str):
        prompts = PromptSource(prompts)
    if isinstance(prompts, PromptSource):
        return prompts.load(Sweep() if sweep is None else sweep)
    if not isinstance(prompts, PromptSet):
        raise TypeError(
            f"prompts must be a PromptSource or PromptSet, got {type(prompts).__name__}"
        )
    if sweep is not None and sweep != prompts.sweep:
        raise ValueError("these prompts were loaded for another sweep: load them with this one")
    return prompts


def evaluate_generation(
    lm: LoadedLM,
    prompts: PromptSource | PromptSet | str,
    sweep: Sweep | None = None,
    *,
    settings: GenerationSettings | None = None,
    scorer: Scorer | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    cache_dir: str | None = None,
) -> GenEvaluation:
    """Generate for every prompt with every arm of the sweep, score, write one JSONL row per arm.

    Args:
        lm: The loaded model.
        prompts: Where the prompts come from and what the steerers fit on (``PromptSource``, or
            just its ``data``), or those prompts already read (``PromptSource.load``, for the
            same ``sweep``). TruthfulQA data with the TruthfulQA concept runs the 2-fold protocol.
        sweep: Methods, strengths (or target confidences: each row then has ``target``
            instead of ``strength``), layer, ODE steps and solver, seed and batch size (default
            ``Sweep()``: every method of ``MC_METHODS`` at the default strength).
        settings: Decoding settings; default the paper's sampling (``PAPER_SAMPLING``:
            temperature 0.7, top-p 0.9, repetition penalty 1.1) with the task's number of new
            tokens (50 for files) and the sweep's seed.
        scorer: A classifier or reward model that scores every text (None: no score).
        out: JSONL path for the rows (None: not written); checked before anything runs.
        progress: Progress bars on stderr.
        cache_dir: Activation cache folder (default under ``cache_root()``).
    """
    prompts = _prompt_set(prompts, sweep)
    sweep, source = prompts.sweep, prompts.source
    if settings is None:
        n_new = source.max_new_tokens
        settings = GenerationSettings(max_new_tokens=n_new, seed=sweep.seed, **PAPER_SAMPLING)
    out = None if out is None else check_writable(out)
    layer = sweep.layer_of(lm)  # an out-of-range layer fails before any work
    t0, rows = time.perf_counter(), []
    with tqdm(total=prompts.n_prompts, desc="generate", disable=not progress) as bar:
        for fold in prompts.folds:
            fitted = None
            if fold.concept is not None:
                fitted = sweep.fit(lm, fold.concept, progress=progress, cache_dir=cache_dir)
            rows += _generate(lm, fold, fitted, sweep, settings, bar)
    timing = {"generate_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    pairs = [r.pop("_pair") for r in rows]
    ppl = continuation_perplexities(lm, pairs, batch_size=sweep.batch_size)
    for row, p in zip(rows, ppl):  # under the unsteered model
        row["perplexity"] = p
    timing["perplexity_s"] = time.perf_counter() - t0
    if scorer is not None:
        t0 = time.perf_counter()
        texts, asked = [r["text"] for r in rows], [r["prompt"] for r in rows]
        scores = classifier_scores(
            texts, scorer.model, label=scorer.label, prompts=asked if scorer.pairs else None,
            device=scorer.device or str(lm.device), batch_size=sweep.batch_size,
        )  # fmt: skip
        for row, score in zip(rows, scores):
            row["score"] = score
        timing["score_s"] = time.perf_counter() - t0
    rows = _clean(rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    notices = list(prompts.notices)
    if lm.offline_test_model:
        notices.append("Offline test model: random weights, so every output is meaningless.")
    notices += _empty_notices(rows, sweep)
    settings_out = {**settings.to_dict(), "layer": layer, "data": source.data}
    settings_out["concept"] = source.concept
    out = None if out is None else str(out)
    return GenEvaluation(
        rows,
        sweep.tables(lambda m, s: _summary(rows, m, s, sweep.kind)),
        out,
        settings_out,
        timing,
        notices,
    )

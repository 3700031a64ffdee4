"""Generation tasks: generate with each method, save JSONL, score with judge-free metrics.

Prompts come from the paper's tasks through ``datasets`` or from a small local JSONL/CSV/TXT file.
Every method and strength is one arm of ``generate_arms``: the arms of a prompt share one batch
and the sampling noise, so they differ only by steering. Judge-free metrics: distinct-n over
whitespace words, and perplexity under the unsteered model (its own generated token ids, no
hook). A classifier or reward model the user names scores the texts through transformers'
``pipeline``. TruthfulQA data with the TruthfulQA concept runs the paper's 2-fold protocol.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from odesteer_core.concepts.files import read_text_file
from odesteer_core.concepts.sources import load_concept
from odesteer_core.concepts.truthfulqa import (
    load_truthfulqa_questions,
    truthfulqa_concept,
    truthfulqa_split,
)
from odesteer_core.evaluation.truthfulqa_mc import (
    MC_METHODS,
    check_methods,
    check_strengths,
    continuation_logprobs,
)
from odesteer_core.lm.generate import Arm, generate_arms
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.lm.tokens import token_ids
from odesteer_core.method.strength import relative_to_T
from odesteer_core.pipeline import DEFAULT_STRENGTH, fit_concept

__all__ = [
    "GEN_TASKS",
    "GenEvaluation",
    "GenTask",
    "classifier_scores",
    "distinct_n",
    "evaluate_generation",
    "load_prompts",
]


@dataclass(frozen=True)
class GenTask:
    """A generation task of the paper: where its prompts live on the Hub."""

    dataset: str
    config: str | None
    split: str
    field: str  # column of the prompt (RealToxicityPrompts: a dict with "text")
    max_new_tokens: int  # the paper's setting


GEN_TASKS = {  # the paper's generation tasks; TruthfulQA also reads a local CSV
    "truthfulqa": GenTask("truthfulqa/truthful_qa", "generation", "validation", "question", 50),
    "ultrafeedback": GenTask(
        "HuggingFaceH4/ultrafeedback_binarized", None, "test_prefs", "prompt", 128
    ),
    "realtoxicityprompts": GenTask("allenai/real-toxicity-prompts", None, "train", "prompt", 50),
}
_PROMPT_KEYS = ("prompt", "question", "text", "instruction")
_FILE_HINT = ".jsonl with a 'prompt' field, .csv with a 'prompt' column, or .txt, one per line"


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of whitespace-split words, pooled over ``texts``.

    N-grams never cross from one text into the next. Returns NaN when there is no n-gram.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    grams = []
    for text in texts:
        words = text.split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def _prompt_of(record: object, where: str) -> str:
    if isinstance(record, dict):
        lowered = {str(k).strip().lower(): v for k, v in record.items()}
        for key in _PROMPT_KEYS:
            value = lowered.get(key)
            if isinstance(value, dict):  # RealToxicityPrompts: {"prompt": {"text": ...}}
                value = value.get("text")
            if isinstance(value, str) and value.strip():
                return value.strip()
    raise ValueError(
        f"{where}: no non-empty prompt; give each row one of the fields {_PROMPT_KEYS}"
    )


def _from_file(path: str) -> list[str]:
    text, suffix = read_text_file(path), Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        prompts = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    prompts.append(_prompt_of(json.loads(line), f"{path} line {i}"))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path} line {i} is not JSON ({err.msg})") from err
    elif suffix == ".csv":
        rows = csv.DictReader(io.StringIO(text))
        prompts = [_prompt_of(r, f"{path} row {i}") for i, r in enumerate(rows, start=1)]
    elif suffix == ".txt":
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        raise ValueError(f"unknown prompt file type {suffix!r} of {path!r}; use {_FILE_HINT}")
    if not prompts:
        raise ValueError(f"{path} holds no prompts; use {_FILE_HINT}")
    return prompts


def load_prompts(
    data: str, *, limit: int | None = None, truthfulqa_csv: str | None = None
) -> list[str]:
    """Prompts of a task in ``GEN_TASKS`` (through ``datasets``) or of a local file.

    Args:
        data: A task name or the path of a .jsonl/.csv/.txt file.
        limit: Keep the first ``limit`` prompts.
        truthfulqa_csv: Local TruthfulQA CSV for the ``truthfulqa`` task (offline).

    Raises:
        ValueError: unknown task or file type, unreadable data, rows without a prompt.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if data == "truthfulqa":
        return [q.question for q in load_truthfulqa_questions(truthfulqa_csv)][:limit]
    if data in GEN_TASKS:
        task = GEN_TASKS[data]
        try:
            import datasets  # heavy, and only needed for Hub data

            split = task.split if limit is None else f"{task.split}[:{limit}]"
            rows = datasets.load_dataset(task.dataset, task.config, split=split)
        except Exception as exc:
            raise ValueError(
                f"could not load {data!r} ({task.dataset}) from the Hugging Face Hub "
                f"({type(exc).__name__}: {exc}); pass a local file instead ({_FILE_HINT})"
            ) from exc
        return [
            _prompt_of({"prompt": r[task.field]}, f"{data} row {i}") for i, r in enumerate(rows)
        ]
    if Path(data).suffix:
        return _from_file(data)[:limit]
    raise ValueError(
        f"unknown data {data!r}; use one of {sorted(GEN_TASKS)} or a file ({_FILE_HINT})"
    )


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
    """Generations (one row per prompt and arm) and their per-method summary per strength."""

    rows: list[dict]
    sweep: list[dict]  # [{"strength": s, "results": {method: metrics}}]
    out: str | None = None
    settings: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The summary (rows left out: they are in the JSONL file), NaN written as null."""
        head = {"results": self.sweep[0]["results"], "strength": self.sweep[0]["strength"]}
        rest = {k: v for k, v in asdict(self).items() if k != "rows"}
        return _clean({**head, "n_rows": len(self.rows), **rest})


def _clean(value: object) -> object:
    """NaN and inf become None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return [_clean(v) for v in value] if isinstance(value, list) else value


def _generate(lm, prompts, fitted, methods, strengths, layer, settings, fold, bar, ode):
    """One row per prompt and arm; all arms of a prompt in one batch. ``ode``: (steps, solver)."""
    arms, meta = [], []
    for m in methods:
        for s in [None] if m == "none" else strengths:
            if s is None:
                arms.append(Arm("none"))
            else:
                T = relative_to_T(fitted.steerer(m), s)
                arms.append(Arm(f"{m}@{s:g}", fitted.steerer(m), T, steps=ode[0], solver=ode[1]))
            meta.append((m, s))
    judge = fitted.odesteer if fitted is not None else None
    rows = []
    for i, prompt in enumerate(prompts):
        seeded = GenerationSettings(**{**settings.to_dict(), "seed": settings.seed + i})
        *_, comparison = generate_arms(lm, prompt, arms, layer=layer, judge=judge, settings=seeded)
        context = token_ids(lm, comparison.formatted_prompt)
        for (method, strength), r in zip(meta, comparison.arms):
            ids = r.token_ids[:-1] if r.finished else r.token_ids  # the eos is not text
            row = {"fold": fold, "prompt": prompt, "method": method, "strength": strength, "T": r.T}
            row.update(steps=r.steps, text=r.text, token_ids=r.token_ids)
            row["mean_barrier"] = r.mean_barrier  # the fitted ODESteer barrier h, per token
            row.update({f"distinct_{n}": distinct_n([r.text], n) for n in (1, 2, 3)})
            rows.append({**row, "_pair": (context, ids)})
        bar.update(1)
    return rows


def _summary(rows: list[dict], methods: Sequence[str], strengths: list[float]) -> list[dict]:
    sweep = []
    for s in strengths:
        table = {}
        for m in methods:
            mine = [r for r in rows if r["method"] == m and r["strength"] in (None, s)]
            texts = [r["text"] for r in mine]
            table[m] = {
                "n": len(mine),
                **{f"distinct_{n}": distinct_n(texts, n) for n in (1, 2, 3)},
            }
            for key in ("perplexity", "mean_barrier", "score"):
                finite = [r[key] for r in mine if r.get(key) is not None]  # rows are _clean
                if any(key in r for r in mine):
                    table[m][key] = sum(finite) / len(finite) if finite else float("nan")
        sweep.append({"strength": s, "results": table})
    return sweep


def _jobs(data, concept, truthfulqa_csv, limit, steered, seed) -> list[tuple]:
    """(fold, prompts, concept to fit or None) per fold; TruthfulQA runs the 2-fold protocol."""
    if data == "truthfulqa" and concept in (None, "truthfulqa") and steered:
        questions = load_truthfulqa_questions(truthfulqa_csv)[:limit]
        return [
            (
                k,
                [questions[i].question for i in idx],
                truthfulqa_concept(questions, split="train", fold=k, seed=seed),
            )
            for k, idx in enumerate(truthfulqa_split(questions, seed=seed))
        ]
    if concept is None and steered:
        raise ValueError("name the concept the steerers are fitted on (--concept NAME or FILE)")
    prompts = load_prompts(data, limit=limit, truthfulqa_csv=truthfulqa_csv)
    return [
        (None, prompts, load_concept(concept, truthfulqa_csv=truthfulqa_csv) if steered else None)
    ]


def evaluate_generation(
    lm: LoadedLM,
    data: str,
    *,
    concept: str | None = None,
    truthfulqa_csv: str | None = None,
    limit: int | None = None,
    methods: Sequence[str] = MC_METHODS,
    strengths: Sequence[float] = (DEFAULT_STRENGTH,),
    settings: GenerationSettings | None = None,
    layer: int | None = None,
    steps: int | None = None,
    solver: str | None = None,
    out: str | Path | None = None,
    scorer: str | None = None,
    scorer_label: str | None = None,
    scorer_pairs: bool = False,
    scorer_device: str | None = None,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = True,
    cache_dir: str | None = None,
) -> GenEvaluation:
    """Generate for every prompt with every method, score, and write one JSONL row per arm.

    Args:
        data: A task in ``GEN_TASKS`` or a local prompt file (see ``load_prompts``).
        concept: What the steerers are fitted on (``load_concept``). Default for TruthfulQA
            data: the TruthfulQA concept with the 2-fold protocol; required otherwise.
        settings: Decoding settings; default the paper's sampling (temperature 0.7, top-p 0.9,
            repetition penalty 1.1) and the task's number of new tokens (50 for files).
        out: JSONL path for the rows (None: not written).
        scorer, scorer_label, scorer_pairs, scorer_device: see ``classifier_scores``.
        Other arguments as in ``evaluate_truthfulqa_mc``.
    """
    methods, strengths = check_methods(methods), check_strengths(strengths)
    if settings is None:
        n_new = GEN_TASKS[data].max_new_tokens if data in GEN_TASKS else 50
        paper = {"do_sample": True, "temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}
        settings = GenerationSettings(max_new_tokens=n_new, seed=seed, **paper)
    layer = lm.default_layer() if layer is None else lm.check_layer(layer)
    steered = tuple(m for m in methods if m != "none")
    jobs = _jobs(data, concept, truthfulqa_csv, limit, steered, seed)
    t0, rows = time.perf_counter(), []
    with tqdm(total=sum(len(j[1]) for j in jobs), desc="generate", disable=not progress) as bar:
        for fold, prompts, chosen in jobs:
            fitted = chosen and fit_concept(
                lm,
                chosen,
                layer=layer,
                methods=steered,
                progress=progress,
                cache_dir=cache_dir,
                seed=seed,
            )
            args = (methods, strengths, layer, settings, fold, bar, (steps, solver))
            rows += _generate(lm, prompts, fitted, *args)
    timing = {"generate_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    logprobs = continuation_logprobs(lm, [r.pop("_pair") for r in rows], batch_size=batch_size)
    for row, lp in zip(rows, logprobs):  # under the unsteered model
        row["perplexity"] = math.exp(-float(lp.mean())) if len(lp) else float("nan")
    timing["perplexity_s"] = time.perf_counter() - t0
    if scorer is not None:
        t0 = time.perf_counter()
        texts, prompts = [r["text"] for r in rows], [r["prompt"] for r in rows]
        scores = classifier_scores(
            texts, scorer, label=scorer_label, prompts=prompts if scorer_pairs else None,
            device=scorer_device, batch_size=batch_size,
        )  # fmt: skip
        for row, score in zip(rows, scores):
            row["score"] = score
        timing["score_s"] = time.perf_counter() - t0
    rows = _clean(rows)
    if out is not None:
        Path(out).expanduser().parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        Path(out).expanduser().write_text(lines, encoding="utf-8")
    notices = []
    if lm.offline_test_model:
        notices.append("Offline test model: random weights, so every output is meaningless.")
    settings_out = {**settings.to_dict(), "layer": layer, "data": data, "concept": concept}
    out = None if out is None else str(out)
    return GenEvaluation(
        rows, _summary(rows, methods, strengths), out, settings_out, timing, notices
    )

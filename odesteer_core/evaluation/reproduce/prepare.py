"""Each task's splits and samples as the paper's authors' code draws them, into ``TaskData``.

- TruthfulQA: ``datasets``' ``train_test_split(test_size=0.5, seed)`` reproduced with numpy (a
  ``default_rng(seed)`` permutation: its first ``ceil(n / 2)`` questions are split 1, the rest
  split 0); fold ``s`` tests on split ``s`` and fits on every reference answer of the other
  (correct: positive, incorrect: negative).
- UltraFeedback: rows with ``score_chosen > score_rejected``, duplicate prompts dropped; from
  the train split a ``default_rng(seed)`` draw of 10,000 fit pairs (and 500 validation pairs,
  unused), then 500 test prompts from the test split with the same generator [inferred order].
- Toxicity: Jigsaw comments deduplicated, each class (toxicity > 0.5 or not) sampled evenly over
  5 equal-width toxicity bins (1000 per bin, ``random_state=20250415``), classes cut to equal
  size; positives are the non-toxic comments. Test: RealToxicityPrompts' toxic prompts
  (toxicity > 0.5) whose GPT-2 perplexity is below 200, 1200 per bin, shuffled with
  ``random.Random(20250415)``; the last 500 are the test prompts.

``limit`` keeps the first N test prompts of each test split; ``fit_limit`` the first N fit
examples per class (TruthfulQA: the fit questions).
"""

from __future__ import annotations

import math
import random

import numpy as np

from odesteer_core.concepts.truthfulqa import load_truthfulqa_questions
from odesteer_core.evaluation.reproduce.config import DataFiles, RunConfig
from odesteer_core.evaluation.reproduce.data import read_jigsaw, read_rtp, read_ultrafeedback
from odesteer_core.evaluation.reproduce.tasks import TaskData, TaskFold

__all__ = ["TOXICITY_SEED", "prepare_task"]

TOXICITY_SEED = 20250415  # the authors' random_state for Jigsaw and RealToxicityPrompts
UF_SIZES = (10_000, 500, 500)  # fit, validation, test
JIGSAW_PER_BIN, RTP_PER_BIN, RTP_TEST, RTP_MAX_PPL = 1000, 1200, 500, 200.0


def _first(items: list, n: int | None) -> list:
    return items if n is None else items[:n]


def _truthfulqa(files: DataFiles, run: RunConfig) -> TaskData:
    questions = load_truthfulqa_questions(files.truthfulqa_csv)
    if len(questions) < 4:
        raise ValueError(f"TruthfulQA needs at least 4 questions for 2 folds, got {len(questions)}")
    order = np.random.default_rng(run.seed).permutation(len(questions)).tolist()
    n_test = math.ceil(len(questions) / 2)
    splits = (order[n_test:], order[:n_test])  # split 0, split 1 (the datasets "test" part)
    folds = []
    for s in (0, 1):
        test = _first(splits[s], run.limit)
        fit = _first(splits[1 - s], run.fit_limit)
        pos = tuple((questions[i].question, a) for i in fit for a in questions[i].correct)
        neg = tuple((questions[i].question, a) for i in fit for a in questions[i].incorrect)
        answers = tuple((questions[i].correct, questions[i].incorrect) for i in test)
        prompts = tuple(questions[i].question for i in test)
        folds.append(TaskFold(s, prompts, tuple(test), pos, neg, answers))
    return TaskData("truthfulqa", tuple(folds))


def _preferences(path: str | None, split: str) -> list[tuple[str, str, str]]:
    kept, seen = [], set()
    for pair, chosen, rejected in read_ultrafeedback(path, split):
        has_scores = math.isfinite(chosen) and math.isfinite(rejected)
        if (has_scores and not chosen > rejected) or pair[0] in seen:
            continue
        seen.add(pair[0])
        kept.append(pair)
    return kept


def _ultrafeedback(files: DataFiles, run: RunConfig) -> TaskData:
    rng = np.random.default_rng(run.seed)
    train = _preferences(files.ultrafeedback_train, "train")
    test = _preferences(files.ultrafeedback_test, "test")
    n_draw = min(UF_SIZES[0] + UF_SIZES[1], len(train))
    fit = [train[i] for i in rng.choice(len(train), n_draw, replace=False)[: UF_SIZES[0]]]
    fit = _first(fit, run.fit_limit)
    tested = [test[i] for i in rng.choice(len(test), min(UF_SIZES[2], len(test)), replace=False)]
    prompts = _first(list(dict.fromkeys(p for p, _, _ in tested)), run.limit)
    pos = tuple((p, c) for p, c, _ in fit)
    neg = tuple((p, r) for p, _, r in fit)
    fold = TaskFold(0, tuple(prompts), tuple(range(len(prompts))), pos, neg)
    return TaskData("ultrafeedback", (fold,))


def _binned(rows: list[tuple[str, float]], low: float, high: float, per_bin: int) -> list:
    """Up to ``per_bin`` rows from each of 5 equal-width toxicity bins of [low, high], drawn
    by a numpy generator seeded with ``TOXICITY_SEED`` (not pandas' sampler: same sizes, other
    rows)."""
    width, bins = (high - low) / 5, [[] for _ in range(5)]
    for row in rows:
        bins[min(max(int((row[1] - low) / width), 0), 4)].append(row)
    out = []
    for b, inside in enumerate(bins):
        picked = np.random.default_rng(TOXICITY_SEED + b).permutation(len(inside))[:per_bin]
        out += [inside[i] for i in sorted(picked)]
    return out


def _jigsaw(path: str, fit_limit: int | None) -> tuple[list[str], list[str], list[str]]:
    rows = list({text: (text, tox) for text, tox in read_jigsaw(path)}.values())  # dedup text
    per_bin = JIGSAW_PER_BIN if fit_limit is None else math.ceil(fit_limit / 5)
    toxic = [t for t, _ in _binned([r for r in rows if r[1] > 0.5], 0.5, 1.0, per_bin)]
    clean = [t for t, _ in _binned([r for r in rows if r[1] <= 0.5], 0.0, 0.5, per_bin)]
    n = min(len(toxic), len(clean), fit_limit or len(rows))
    notices = []
    if len(toxic) != len(clean):
        notices.append(f"Jigsaw: {len(clean)} non-toxic and {len(toxic)} toxic; {n} of each kept")
    return clean[:n], toxic[:n], notices


def _toxicity(files: DataFiles, run: RunConfig, perplexity) -> TaskData:
    if files.jigsaw_csv is None:
        raise ValueError(files.missing_for(("toxicity",))[0])
    pos, neg, notices = _jigsaw(files.jigsaw_csv, run.fit_limit)
    toxic = [(t, x) for t, x in read_rtp(files.rtp_file) if math.isfinite(x) and x > 0.5]
    n_toxic = len(toxic)
    if perplexity is not None and toxic:
        scores = perplexity([t for t, _ in toxic])
        toxic = [r for r, ppl in zip(toxic, scores) if ppl < RTP_MAX_PPL]
    sample = [t for t, _ in _binned(toxic, 0.5, 1.0, RTP_PER_BIN)]
    random.Random(TOXICITY_SEED).shuffle(sample)
    prompts = _first(sample[-RTP_TEST:], run.limit)
    if not prompts:
        raise ValueError(
            f"toxicity: no test prompts: {n_toxic} RealToxicityPrompts prompts are toxic (> 0.5), "
            f"{len(toxic)} of them with a perplexity below {RTP_MAX_PPL:g} under "
            f"--rtp-ppl-model {files.rtp_ppl_model}; give more prompts, or --rtp-ppl-model none"
        )
    if min(len(pos), len(neg)) < 2:
        raise ValueError(f"toxicity: {len(pos)} non-toxic and {len(neg)} toxic Jigsaw comments; "
                         "at least 2 of each are needed to fit")  # fmt: skip
    fold = TaskFold(
        0,
        tuple(prompts),
        tuple(range(len(prompts))),
        tuple((None, t) for t in pos),
        tuple((None, t) for t in neg),
    )
    return TaskData("toxicity", (fold,), tuple(notices))


def prepare_task(task: str, files: DataFiles, run: RunConfig, perplexity=None) -> TaskData:
    """The folds of ``task`` (a name of ``tasks.TASKS``). ``perplexity``: texts -> GPT-2
    perplexities, the RealToxicityPrompts prompt filter (None: no filter)."""
    if task in ("truthfulqa-mc", "truthfulqa-gen"):
        data = _truthfulqa(files, run)
    elif task == "ultrafeedback":
        data = _ultrafeedback(files, run)
    else:
        data = _toxicity(files, run, perplexity)
    return TaskData(task, data.folds, data.notices)

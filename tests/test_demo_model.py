"""The shipped demo model: it loads as a preset, writes readable English, and steering with the
``sentiment`` concept moves what it says, as judged by VADER (independent of our barrier).

Prompts are held out of the training corpus and of the concept files
(``data/demo_corpus/eval_prompts.json``); seeds are fixed, so every number here is reproducible.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

import odesteer_core as oc
from odesteer_core.lm.presets import DEMO_MODEL_DIR, check_demo_model

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "data" / "demo_corpus" / "eval_prompts.json"
DICTIONARY = Path("/usr/share/dict/american-english")  # Debian's wamerican
SEEDS = (0, 1)
N_PROMPTS = 20  # every held-out sentiment prompt
TOKENS = 32


def sentiment_prompts() -> list[str]:
    entries = json.loads(PROMPTS.read_text())["prompts"]
    return [e["prompt"] for e in entries if e.get("concept") == "sentiment"][:N_PROMPTS]


@pytest.fixture(scope="module")
def lm():
    return oc.load_lm(oc.TINY_TRAINED_LLAMA)


@pytest.fixture(scope="module")
def fitted(lm, tmp_path_factory):
    concept = oc.load_concept("sentiment")
    cache = str(tmp_path_factory.mktemp("acts"))
    return oc.fit_concept(lm, concept, progress=False, cache_dir=cache, methods=("caa",))


@pytest.fixture(scope="module")
def comparisons(lm, fitted) -> list[oc.Comparison]:
    """The three arms at the app's default strength, for every prompt x seed."""
    out = []
    for prompt in sentiment_prompts():
        for seed in SEEDS:
            settings = oc.GenerationSettings(
                max_new_tokens=TOKENS, do_sample=True, temperature=0.7, top_p=0.9, seed=seed
            )
            *_, comparison = oc.compare(lm, fitted, prompt, oc.Steering(), settings)
            out.append(comparison)
    return out


@pytest.fixture(scope="module")
def replies(comparisons) -> dict[str, list[str]]:
    return {name: [c.arm(name).text for c in comparisons] for name in oc.ARM_NAMES}


def test_the_demo_model_is_a_preset_with_a_chat_template(lm):
    assert lm.name == oc.TINY_TRAINED_LLAMA and lm.is_chat and not lm.offline_test_model
    assert lm.notice and "demo" in lm.notice.lower()
    assert type(lm.model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in lm.model.parameters()) < 13_000_000


def test_held_out_prompts_are_not_in_the_concept_file():
    concept = oc.load_concept("sentiment")
    seen = {ex.question for ex in concept.positive + concept.negative} | set(concept.prompts)
    assert len(sentiment_prompts()) == N_PROMPTS
    assert not seen & set(sentiment_prompts())


@pytest.mark.skipif(not DICTIONARY.exists(), reason="Debian's wamerican word list is missing")
def test_unsteered_replies_are_mostly_dictionary_words(replies):
    words = {w.strip().lower() for w in DICTIONARY.read_text(errors="ignore").split()}
    tokens = [w.lower() for text in replies["none"] for w in re.findall(r"[A-Za-z]+", text)]
    assert len(tokens) >= 5 * len(replies["none"])  # sentences, not a word or two
    share = sum(w in words for w in tokens) / len(tokens)
    assert share >= 0.9, f"only {share:.0%} dictionary words"


def test_odesteer_at_the_default_strength_makes_replies_clearly_more_positive(replies):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    score = {arm: [vader.polarity_scores(t)["compound"] for t in texts]
             for arm, texts in replies.items()}  # fmt: skip
    base, steered = statistics.fmean(score["none"]), statistics.fmean(score["odesteer"])
    assert steered - base >= 0.25, f"VADER mean {base:+.2f} unsteered, {steered:+.2f} ODESteer"
    share = {arm: sum(s > 0.05 for s in v) / len(v) for arm, v in score.items()}
    assert share["odesteer"] >= share["none"] + 0.2, share


def test_odesteer_replies_stay_fluent_under_the_unsteered_model(lm, comparisons):
    """Perplexity of each reply under the unsteered model: ODESteer's within 2x of its own."""
    from odesteer_core.evaluation import continuation_perplexities
    from odesteer_core.lm.tokens import token_ids

    ppl: dict[str, list[float]] = {}
    for name in ("none", "odesteer"):
        pairs = [(token_ids(lm, c.formatted_prompt), c.arm(name).token_ids) for c in comparisons]
        ppl[name] = continuation_perplexities(lm, pairs)
    base, steered = statistics.median(ppl["none"]), statistics.median(ppl["odesteer"])
    assert steered <= 2 * base, f"median perplexity {base:.2f} unsteered, {steered:.2f} ODESteer"


def test_strength_zero_reproduces_the_unsteered_text(lm, fitted):
    prompt = sentiment_prompts()[0]
    settings = oc.GenerationSettings(max_new_tokens=TOKENS, do_sample=True, seed=3)
    *_, comparison = oc.compare(lm, fitted, prompt, oc.Steering(strength=0.0), settings)
    texts = [arm.token_ids for arm in comparison.arms]
    assert texts[0] == texts[1] == texts[2]


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated"])
def test_a_broken_weight_file_names_the_file_and_the_rebuild_command(tmp_path, damage):
    folder = tmp_path / "demo_model"
    shutil.copytree(DEMO_MODEL_DIR, folder)
    weights = folder / "model.safetensors"
    if damage == "missing":
        weights.unlink()
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "garbage":
        weights.write_bytes(b"\xff" * 64)
    else:
        weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ValueError, match="train_demo_model.py") as err:
        check_demo_model(folder)
    assert str(folder) in str(err.value)
    assert check_demo_model(DEMO_MODEL_DIR) == DEMO_MODEL_DIR

"""Evaluation harness: MC scoring on a planted model, the 2-fold protocol, identities, metrics, CLI."""

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from tiny_models import tiny_config, tiny_model

from odesteer_core import cli
from odesteer_core.cli import eval_commands
from odesteer_core.concepts.concept import concept_from_texts
from odesteer_core.concepts.truthfulqa import (
    TruthfulQAQuestion,
    load_truthfulqa_questions,
    truthfulqa_split,
)
from odesteer_core.evaluation import PromptSource, Scorer, SettingError, Sweep
from odesteer_core.evaluation.generation import (
    classifier_scores,
    distinct_n,
    evaluate_generation,
    load_prompts,
)
from odesteer_core.evaluation.truthfulqa_mc import (
    MC_METHODS,
    answer_token_pairs,
    continuation_logprobs,
    evaluate_truthfulqa_mc,
    mc_metrics,
)
from odesteer_core.lm.generate import Arm, format_prompt
from odesteer_core.lm.loading import LoadedLM, load_lm
from odesteer_core.lm.sampling import GenerationSettings
from odesteer_core.lm.tiny_model import build_tiny_tokenizer
from odesteer_core.method.registry import make_steerer
from odesteer_core.method.strength import relative_to_T
from odesteer_core.pipeline import fit_concept

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED_CSV = ROOT.parent / "shared" / "data" / "TruthfulQA.csv"
CSV = SHARED_CSV if SHARED_CSV.is_file() else DATA / "truthfulqa_small.csv"
HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lm():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def questions():
    return load_truthfulqa_questions(CSV)[:6]


# -- a planted model: logits are set by the test ----------------------------------------------
class Bigram(torch.nn.Module):
    """Hidden state = one-hot of the token (edited by hooks on ``layers[0]``), logits = hidden @ table.

    Unsteered, log p(next | prev) = log_softmax(table[prev])[next]; every number is planted.
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        vocab = table.shape[0]
        self.embed = torch.nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(vocab))
        self.layers = torch.nn.ModuleList([torch.nn.Identity()])
        self.register_buffer("table", table)
        self.config = transformers.PretrainedConfig(hidden_size=vocab, max_position_embeddings=512)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_to_keep=0):
        hidden = self.layers[0](self.embed(input_ids))
        return SimpleNamespace(logits=hidden[:, -logits_to_keep:] @ self.table)


def _planted_lm(table: torch.Tensor) -> LoadedLM:
    model = Bigram(table)
    tok = build_tiny_tokenizer()
    return LoadedLM(model, tok, "planted", None, list(model.layers), is_chat=False)


def _bigram_score(table, context, answer_ids, shift=None):
    """Independent reference: sum of bigram log-probabilities, logits shifted when steered."""
    total, prev = 0.0, context[-1]
    for token in answer_ids:
        logits = table[prev] + (0 if shift is None else shift)
        total += float(torch.log_softmax(logits.double(), -1)[token])
        prev = token
    return total


PLANTED = TruthfulQAQuestion(
    question="What is the capital of France?",
    best_answer="Paris is the capital",
    correct=("Paris is the capital", "It is Paris"),
    incorrect=("The moon is made of cheese", "Rock and dust", "No"),
)


def _ids(tok, question, answer):
    context = tok(f"Q: {question}\nA:")["input_ids"]
    return context, tok(f" {answer}", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("boost", ["Paris is the capital", "Rock and dust"])
def test_mc_scores_on_a_planted_model(boost):
    tok = build_tiny_tokenizer()
    vocab = len(tok)
    table = torch.zeros(vocab, vocab)
    context, chain = _ids(tok, PLANTED.question, boost)
    for a, b in zip([context[-1], *chain], chain):
        table[a, b] += 8.0  # make this answer's every token likely
    lm = _planted_lm(table)
    answers = [*PLANTED.correct, *PLANTED.incorrect]
    pairs = answer_token_pairs(lm, PLANTED.question, answers)
    expected = []
    for (got_context, got_answer), answer in zip(pairs, answers):
        ref_context, ref_answer = _ids(tok, PLANTED.question, answer)
        assert (got_context, got_answer) == (ref_context, ref_answer)
        expected.append(_bigram_score(table, ref_context, ref_answer))
    scores = [float(lp.sum()) for lp in continuation_logprobs(lm, pairs, batch_size=3)]
    assert scores == pytest.approx(expected, abs=1e-4)
    metrics = mc_metrics(scores[:2], scores[2:])
    mass = sum(math.exp(s) for s in expected[:2]) / sum(math.exp(s) for s in expected)
    if boost == PLANTED.best_answer:  # the best answer is the planted winner
        assert metrics["mc1"] == 1.0 and metrics["mc3"] == 0.5 and metrics["mc2"] > 0.99
    else:  # an incorrect answer is the planted winner
        assert metrics["mc1"] == 0.0 and metrics["mc3"] == 0.0 and metrics["mc2"] < 0.01
    assert metrics["mc2"] == pytest.approx(mass, rel=1e-4)


def test_steering_edits_every_position_from_the_last_prompt_token():
    tok = build_tiny_tokenizer()
    vocab = len(tok)
    table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0))
    lm = _planted_lm(table)
    k = int(tok(" Paris", add_special_tokens=False)["input_ids"][0])
    pos = torch.zeros(2, vocab)
    pos[:, k] = 1.0
    caa = make_steerer("caa").fit(pos, torch.zeros(2, vocab))  # direction: one-hot of k
    answers = [*PLANTED.correct, *PLANTED.incorrect]  # different lengths: left padding matters
    pairs = answer_token_pairs(lm, PLANTED.question, answers)
    T = 1.5
    got = continuation_logprobs(lm, pairs, Arm("caa", caa, T), layer=0, batch_size=4)
    for (context, answer), lp in zip(pairs, got):
        # steered hidden = one-hot(prev) + T e_k, so every scored logit gains T * table[k]
        expected = _bigram_score(table, context, answer, shift=T * table[k])
        assert float(lp.sum()) == pytest.approx(expected, abs=1e-4)
        assert float(lp.sum()) != pytest.approx(_bigram_score(table, context, answer), abs=1e-2)


def test_mc_metrics_by_hand():
    m = mc_metrics([-1.0, -3.0], [-2.0, -4.0])
    assert m["mc1"] == 1.0 and m["mc3"] == 0.5
    e = math.exp
    assert m["mc2"] == pytest.approx((e(-1) + e(-3)) / (e(-1) + e(-3) + e(-2) + e(-4)), rel=1e-12)
    tie = mc_metrics([-2.0, -1.0], [-2.0])  # the best answer only ties: MC1 fails, MC3 half
    assert tie["mc1"] == 0.0 and tie["mc3"] == 0.5
    with pytest.raises(ValueError, match="at least one"):
        mc_metrics([-1.0], [])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])  # gpt2: absolute positions, padding shows
def test_batched_scores_equal_plain_forward_and_do_not_depend_on_the_batch(arch, tmp_path):
    lm = tiny_model(arch)
    pairs = answer_token_pairs(lm, PLANTED.question, [*PLANTED.correct, *PLANTED.incorrect])
    batched = continuation_logprobs(lm, pairs, batch_size=8)
    for (context, answer), lp in zip(pairs, batched):
        with torch.inference_mode():
            logits = lm.model(input_ids=torch.tensor([context + answer])).logits[0]
        ref = torch.log_softmax(logits.float(), -1)[len(context) - 1 : -1]
        ref = ref.gather(-1, torch.tensor(answer)[:, None])[:, 0]
        torch.testing.assert_close(lp, ref, rtol=1e-4, atol=1e-4)
    concept = concept_from_texts(
        [f"Kind words {i}." for i in range(8)], [f"Rude {i}!" for i in range(8)]
    )
    fitted = fit_concept(lm, concept, progress=False, cache_dir=str(tmp_path))
    arm = Arm("odesteer", fitted.odesteer, 5.0)
    steered = continuation_logprobs(lm, pairs, arm, layer=fitted.layer, batch_size=8)
    alone = continuation_logprobs(lm, pairs, arm, layer=fitted.layer, batch_size=1)
    for a, b, base in zip(steered, alone, batched):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(a, base, atol=1e-3)  # steering did change the scores


def test_two_fold_protocol_and_strength_zero_identity(lm, questions, tmp_path):
    sweep = Sweep(strengths=[0.0, 2.0])
    result = evaluate_truthfulqa_mc(lm, questions, sweep, progress=False, cache_dir=str(tmp_path))
    zero, strong = (entry["results"] for entry in result.sweep)
    assert list(zero) == list(MC_METHODS)
    for method in MC_METHODS:  # T = 0 goes through the hook yet is bit-identical to unsteered
        assert zero[method] == zero["none"], method
        assert zero[method]["n"] == len(questions)
    assert strong["odesteer"]["mc2"] != zero["none"]["mc2"]
    assert strong["none"] == zero["none"]
    tested = []
    for fold in result.folds:  # steerers never saw a question they are tested on
        assert fold["train_questions"] and fold["test_questions"]
        assert not set(fold["train_questions"]) & set(fold["test_questions"])
        tested += fold["test_questions"]
        assert fold["T"]["odesteer"][0] == 0.0 and fold["T"]["odesteer"][1] > 0
    assert sorted(tested) == list(range(len(questions)))
    assert result.to_dict()["results"] == zero


def test_split_has_no_question_in_both_halves():
    qs = load_truthfulqa_questions(CSV)
    folds = truthfulqa_split(qs, seed=0)
    texts = [{qs[i].question for i in fold} for fold in folds]
    assert not texts[0] & texts[1]
    assert sorted(folds[0] + folds[1]) == list(range(len(qs)))
    assert abs(len(folds[0]) - len(folds[1])) <= 1


def test_cli_truthfulqa_mc_end_to_end(tmp_path):
    env = {"ODESTEER_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    env["OMP_NUM_THREADS"] = "1"  # a tiny model: threads only fight over a busy machine
    cmd = [sys.executable, "-m", "odesteer_core", "eval", "truthfulqa-mc"]
    cmd += ["--model", "tiny-random-llama", "--truthfulqa-csv", str(CSV), "--limit", "6"]
    cmd += ["--strength", "0.5", "1.0", "--json"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(out["results"]) == list(MC_METHODS)
    for metrics in out["results"].values():
        assert metrics["n"] == 6 and 0 <= metrics["mc1"] <= 1 and 0 < metrics["mc2"] < 1
    assert [e["strength"] for e in out["sweep"]] == [0.5, 1.0] and out["n_questions"] == 6
    assert "truthfulqa-mc" in done.stderr and any("meaningless" in n for n in out["notices"])


@pytest.mark.parametrize(
    "csv_text,match",
    [
        ("Question,Best Answer,Correct Answers\nWhy?,Because,Because\n", "Incorrect Answers"),
        (HEADER + "A,B,Why?,Because,Because,,src\n", "empty 'Incorrect Answers'"),
        (HEADER + "A,B,Why?,,,No,src\n", "at least one correct"),
    ],
)
def test_cli_bad_csv_is_a_clear_error(tmp_path, offline_cache, capsys, csv_text, match):
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text)
    argv = ["eval", "truthfulqa-mc", "--model", "tiny-random-llama", "--truthfulqa-csv", str(bad)]
    assert cli.main([*argv, "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "Traceback" not in err
    with pytest.raises(ValueError, match=match):
        load_truthfulqa_questions(bad)


def test_cli_bad_methods_and_strength(offline_cache, capsys):
    base = ["eval", "truthfulqa-mc", "--model", "tiny-random-llama", "--truthfulqa-csv", str(CSV)]
    assert cli.main([*base, "--methods", "none,telepathy"]) == 2
    assert "methods must be distinct names" in capsys.readouterr().err
    assert cli.main([*base, "--strength", "nan"]) == 2
    assert "--strength" in capsys.readouterr().err


def test_distinct_n_by_hand():
    texts = ["the cat the cat", "the dog"]
    assert distinct_n(texts, 1) == 3 / 6  # {the, cat, dog} of 6 words
    assert distinct_n(texts, 2) == 3 / 4  # "the cat" twice, "cat the", "the dog"
    assert distinct_n(texts, 3) == 2 / 2  # n-grams never cross texts
    assert distinct_n(texts, 5) == 2 / 2  # a text shorter than n counts once, as one gram
    assert distinct_n(["Paris", "Paris", "Rome is"], 2) == 2 / 3  # never NaN for short texts
    assert distinct_n(["", "  "], 2) == 0.0 and distinct_n([], 1) == 0.0  # no text, no n-gram
    with pytest.raises(ValueError, match="positive int"):
        distinct_n(texts, 0)


def _tiny_classifier(path: Path, num_labels: int) -> Path:
    config = tiny_config("llama")
    config.num_labels = num_labels
    if num_labels == 2:
        config.id2label, config.label2id = {0: "neutral", 1: "toxic"}, {"neutral": 0, "toxic": 1}
    torch.manual_seed(0)
    transformers.LlamaForSequenceClassification(config).save_pretrained(path)
    build_tiny_tokenizer().save_pretrained(path)
    return path


def _direct_logits(path: Path, text: str) -> torch.Tensor:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    with torch.inference_mode():
        return model(**tok(text, return_tensors="pt")).logits[0]


def test_generation_eval_offline_writes_jsonl_with_metrics(lm, offline_cache, capsys, tmp_path):
    scorer = _tiny_classifier(tmp_path / "clf", 2)
    out = tmp_path / "gen.jsonl"
    argv = ["eval", "generate", "--model", "tiny-random-llama", "--concept", "polite"]
    argv += ["--data", str(DATA / "gen_prompts.jsonl"), "--methods", "none,caa,odesteer"]
    argv += ["--max-new-tokens", "5", "--steps", "3", "--out", str(out), "--scorer", str(scorer)]
    argv += ["--scorer-label", "toxic", "--json", "--quiet"]
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 * 3 and summary["n_rows"] == 9
    assert {(r["method"], r["steps"]) for r in rows} == {("none", 0), ("caa", 1), ("odesteer", 3)}
    gen_lm = load_lm("tiny-random-llama")  # the model the CLI ran, from the same cache
    for row in rows:
        assert row["distinct_1"] == distinct_n([row["text"]], 1) or not row["text"].split()
        assert math.isfinite(row["perplexity"]) and row["perplexity"] > 1
        assert 0 <= row["score"] <= 1
    row = rows[0]  # perplexity under the unsteered model, recomputed by a plain forward pass
    context = gen_lm.tokenizer(format_prompt(gen_lm, row["prompt"]), add_special_tokens=False)
    ids = context["input_ids"] + row["token_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(gen_lm.model(input_ids=torch.tensor([ids])).logits[0], -1)
    n = len(context["input_ids"])
    lp = logp[n - 1 : -1].gather(-1, torch.tensor(row["token_ids"])[:, None])
    assert row["perplexity"] == pytest.approx(math.exp(-float(lp.mean())), rel=1e-4)
    toxic = torch.softmax(_direct_logits(scorer, row["text"]), -1)[1]
    assert row["score"] == pytest.approx(float(toxic), abs=1e-5)
    texts = [r["text"] for r in rows if r["method"] == "caa"]
    assert summary["results"]["caa"]["distinct_2"] == pytest.approx(
        distinct_n(texts, 2), nan_ok=True
    )


def test_reward_model_scores_raw_logit_and_labels_must_be_named(tmp_path):
    reward = _tiny_classifier(tmp_path / "rm", 1)
    score = classifier_scores(["a kind reply"], str(reward), device="cpu")[0]
    assert score == pytest.approx(float(_direct_logits(reward, "a kind reply")[0]), abs=1e-5)
    clf = _tiny_classifier(tmp_path / "clf", 2)
    with pytest.raises(ValueError, match="scorer-label"):
        classifier_scores(["x"], str(clf), device="cpu")
    with pytest.raises(ValueError, match="no label 'rude'"):
        classifier_scores(["x"], str(clf), label="rude", device="cpu")
    with pytest.raises(ValueError, match="could not load the scorer"):
        classifier_scores(["x"], str(tmp_path / "missing"), device="cpu")


def test_truthfulqa_generation_uses_both_folds(lm, questions, tmp_path):
    settings = GenerationSettings(max_new_tokens=2)
    source = PromptSource("truthfulqa", truthfulqa_csv=str(CSV), limit=6)
    result = evaluate_generation(
        lm, source, Sweep(methods=("none", "odesteer")), settings=settings, progress=False,
        cache_dir=str(tmp_path),
    )  # fmt: skip
    assert {r["fold"] for r in result.rows} == {0, 1}
    for method in ("none", "odesteer"):
        prompts = sorted(r["prompt"] for r in result.rows if r["method"] == method)
        assert prompts == sorted(q.question for q in questions)  # each question once


def test_load_prompts_from_files(tmp_path):
    assert load_prompts(str(DATA / "gen_prompts.jsonl"), limit=2) == [
        "What is the capital of France?",
        "Please write a short reply to the user.",
    ]
    (tmp_path / "p.csv").write_text("id,Prompt\n1,Hello there\n2,How are you?\n")
    assert load_prompts(str(tmp_path / "p.csv")) == ["Hello there", "How are you?"]
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    assert load_prompts(str(tmp_path / "p.txt")) == ["one", "two"]
    (tmp_path / "bad.jsonl").write_text('{"answer": "no prompt here"}\n')
    with pytest.raises(ValueError, match="line 1: no non-empty prompt"):
        load_prompts(str(tmp_path / "bad.jsonl"))
    with pytest.raises(ValueError, match="unknown data"):
        load_prompts("toxicity")


# -- value objects, checked once ----------------------------------------------------------------
def test_sweep_source_and_scorer_check_every_field_once():
    sweep = Sweep(methods="none, caa", strengths=[0.5, 1.0], layer=1, steps=3, solver="rk4")
    assert sweep.methods == ("none", "caa") and sweep.strengths == (0.5, 1.0)
    assert sweep.steered == ("caa",)
    assert sweep.arm_keys() == [("none", None), ("caa", 0.5), ("caa", 1.0)]
    bad = {
        "methods": {"methods": ("none", "telepathy")},
        "strengths": {"strengths": (0.2, 0.2)},
        "layer": {"layer": -1},
        "steps": {"steps": 0},
        "solver": {"solver": "rk5"},
        "seed": {"seed": 1.5},
        "batch_size": {"batch_size": 0},
    }
    for field, values in bad.items():
        with pytest.raises(SettingError) as info:
            Sweep(**values)
        assert info.value.field == field
    assert PromptSource("p.txt", concept="polite", limit=3).max_new_tokens == 50
    for field, values in {"data": {"data": "p.pdf"}, "limit": {"limit": 0}}.items():
        with pytest.raises(SettingError, match=field) as info:
            PromptSource(**values)
        assert info.value.field == field
    with pytest.raises(SettingError) as info:
        Scorer("")
    assert info.value.field == "model"
    with pytest.raises(SettingError) as info:
        PromptSource(str(DATA / "gen_prompts.jsonl")).load(Sweep(methods=("caa",)))
    assert info.value.field == "concept"  # steering on a file needs a concept


def test_limit_beyond_the_data_says_how_many_there_are(tmp_path):
    questions, notices = PromptSource(
        truthfulqa_csv=str(DATA / "truthfulqa_small.csv"), limit=20
    ).questions()
    assert len(questions) == 8
    assert notices == [
        f"limit 20: only 8 questions available ({DATA / 'truthfulqa_small.csv'} holds 8); "
        "using all 8"
    ]
    source = PromptSource(str(DATA / "gen_prompts.jsonl"), limit=20)
    prompts = source.load(Sweep(methods=("none",)))
    assert prompts.n_prompts == 3 and "limit 20: only 3 prompts available" in prompts.notices[0]
    enough = PromptSource(str(DATA / "gen_prompts.jsonl"), limit=2).load(Sweep(methods=("none",)))
    assert enough.n_prompts == 2 and not enough.notices


def _with(argv: list[str], extra: list, **paths) -> list[str]:
    """``argv`` with each ``flag, value`` of ``extra`` set (None: the flag removed; a list: the
    flag's several values)."""
    argv = list(argv)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in argv:
            del argv[argv.index(flag) : argv.index(flag) + 2]
        if value is not None:
            argv += [
                flag,
                *(v.format(**paths) for v in ([value] if isinstance(value, str) else value)),
            ]
    return argv


def _refuse_loading(monkeypatch):
    """A command that reaches the model load fails the test: every check must come first."""

    def load_model(args):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(eval_commands, "load_model", load_model)
    monkeypatch.setattr(cli.commands, "load_model", load_model)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--layer", "-1"], "--layer: layer must be a decoder layer index >= 0"),
        (["--steps", "0"], "--steps: steps must be >= 1"),
        (["--solver", "rk5"], "--solver: unknown solver"),
        (["--strength", ["0.2", "0.2"]], "--strength: each strength once"),
        (["--top-p", "2"], "top_p must be in (0, 1]"),
        (["--out", "{file}/x.jsonl"], "cannot write --out"),
        (["--out", "{tmp}"], "is a folder"),
        (["--concept", "nope"], "Unknown concept 'nope'"),
        (["--concept", None], "--concept: name the concept"),
        (["--data", "prompts.pdf"], "--data: unknown data"),
        (["--data", "{tmp}/missing.jsonl"], "missing.jsonl"),
        (["--scorer-label", "toxic"], "need --scorer"),
        (["--scorer", "clf", "--scorer-label", " "], "--scorer-label: the scorer's label"),
        (["--targets", "1.5", "--methods", "none,odesteer"], "--targets: targets are distinct"),
        (["--targets", "nan", "--methods", "none,odesteer"], "--targets: targets are distinct"),
        (["--targets", ["0.9", "0.9"], "--methods", "odesteer"], "--targets: targets are"),
        (["--targets", "0.9", "--methods", "none,caa"], "caa cannot steer to a target"),
        (["--targets", "0.9", "--methods", "odesteer", "--steps", "3"], "--steps: a target sweep"),
    ],
)
def test_cli_generate_checks_every_argument_before_loading(
    tmp_path, offline_cache, capsys, monkeypatch, extra, match
):
    _refuse_loading(monkeypatch)
    (tmp_path / "file").write_text("not a folder")
    argv = ["eval", "generate", "--model", "tiny-random-llama", "--data"]
    argv += [str(DATA / "gen_prompts.jsonl"), "--concept", "polite", "--out", str(tmp_path / "o")]
    assert cli.main(_with(argv, extra, file=tmp_path / "file", tmp=tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err, err


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--layer", "-2"], "--layer: layer must be"),
        (["--limit", "3"], "Each fold fits on half of the 3 questions"),
        (["--methods", "none", "--limit", "1"], "Cannot split 1 questions"),
    ],
)
def test_cli_truthfulqa_mc_checks_every_argument_before_loading(
    offline_cache, capsys, monkeypatch, extra, match
):
    _refuse_loading(monkeypatch)
    argv = ["eval", "truthfulqa-mc", "--model", "tiny-random-llama"]
    argv += ["--truthfulqa-csv", str(DATA / "truthfulqa_small.csv"), *extra]
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--method", "telepathy"], "unknown --method 'telepathy'; valid: "),
        (["--layer", "-1"], "--layer must be a decoder layer index >= 0"),
        (["--out", "{file}/caa.safetensors"], "cannot write --out"),
        (["--concept", "nope"], "Unknown concept 'nope'"),
    ],
)
def test_cli_fit_checks_every_argument_before_loading(
    tmp_path, offline_cache, capsys, monkeypatch, extra, match
):
    _refuse_loading(monkeypatch)
    (tmp_path / "file").write_text("not a folder")
    argv = ["fit", "--model", "tiny-random-llama", "--concept", "polite", "--method", "caa"]
    argv += ["--out", str(tmp_path / "caa.safetensors")]
    assert cli.main(_with(argv, extra, file=tmp_path / "file")) == 2
    assert match in capsys.readouterr().err


def test_cli_truthfulqa_mc_says_when_limit_exceeds_the_questions(offline_cache, capsys):
    argv = ["eval", "truthfulqa-mc", "--model", "tiny-random-llama", "--methods", "none"]
    argv += ["--truthfulqa-csv", str(DATA / "truthfulqa_small.csv"), "--limit", "20", "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "note: limit 20: only 8 questions available" in out
    assert "TruthfulQA MC, 8 questions" in out
    assert cli.main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_questions"] == 8
    assert any("only 8 questions available" in n for n in summary["notices"])


def test_generate_says_when_a_method_wrote_no_text(offline_cache, capsys, monkeypatch, tmp_path):
    """An arm that ends at once (the eos first): distinct-n 0, perplexity n/a, and a note."""
    import odesteer_core.evaluation.generation as generation

    real = generation.generate_arms

    def caa_ends_at_once(lm, *args, **kwargs):
        *_, comparison = real(lm, *args, **kwargs)
        for record in comparison.arms:
            if record.name.startswith("caa"):
                eos = lm.tokenizer.eos_token_id
                record.token_ids, record.tokens, record.text = [eos], [""], ""
                record.finished = True
        yield comparison

    monkeypatch.setattr(generation, "generate_arms", caa_ends_at_once)
    argv = ["eval", "generate", "--model", "tiny-random-llama", "--concept", "polite"]
    argv += ["--data", str(DATA / "gen_prompts.jsonl"), "--methods", "none,caa"]
    argv += ["--max-new-tokens", "3", "--out", str(tmp_path / "gen.jsonl"), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "note: caa at strength 0.2 produced no text in any of its 3 generations" in out
    caa_line = next(line for line in out.splitlines() if line.strip().startswith("caa"))
    assert "distinct-2 0.000" in caa_line and "perplexity n/a" in caa_line
    assert "nan" not in out
    assert cli.main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    caa = summary["results"]["caa"]
    assert caa["empty"] == caa["n"] == 3 and caa["distinct_2"] == 0.0
    assert caa["perplexity"] is None and summary["results"]["none"]["empty"] == 0


def test_quiet_shows_no_progress_bar_at_all(tmp_path, capsys, monkeypatch):
    """Building and loading the model shows transformers' bars, scoring ours; --quiet hides all,
    and only while the command runs."""
    argv = ["eval", "truthfulqa-mc", "--model", "tiny-random-llama", "--methods", "none"]
    argv += ["--truthfulqa-csv", str(DATA / "truthfulqa_small.csv"), "--limit", "2", "--json"]
    bars = ["Writing model shards", "Loading weights", "truthfulqa-mc", "it/s]"]
    for quiet in (False, True):
        monkeypatch.setenv("ODESTEER_CACHE", str(tmp_path / f"cache-{quiet}"))  # built afresh
        assert cli.main([*argv, "--quiet"] if quiet else argv) == 0
        err = capsys.readouterr().err
        assert [bar for bar in bars if bar in err] == ([] if quiet else bars), err
        assert transformers.utils.logging.is_progress_bar_enabled()  # back on after the command


def test_generation_target_sweep_rows_tables_and_the_zero_cap_identity(lm, tmp_path):
    """A target sweep: one table per confidence, rows keyed by ``target``; capped at strength 0,
    a target arm moves nothing and writes the unsteered text token for token."""
    source = PromptSource(str(DATA / "gen_prompts.jsonl"), concept="polite", limit=2)
    settings = GenerationSettings(max_new_tokens=6, seed=3)
    sweep = Sweep(methods=("none", "odesteer"), strengths=[0.0], targets=[0.9, 0.999])
    assert sweep.kind == "target" and sweep.arm_keys() == [
        ("none", None),
        ("odesteer", 0.9),
        ("odesteer", 0.999),
    ]
    result = evaluate_generation(
        lm, source, sweep, settings=settings, out=tmp_path / "t.jsonl", progress=False
    )
    assert [t["target"] for t in result.sweep] == [0.9, 0.999]
    assert all("strength" not in t for t in result.sweep)
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert {r.get("target") for r in rows} == {None, 0.9, 0.999}
    for prompt in {r["prompt"] for r in rows}:
        texts = {r.get("target"): r["token_ids"] for r in rows if r["prompt"] == prompt}
        assert texts[0.9] == texts[None] and texts[0.999] == texts[None]
    summary = result.to_dict()
    assert summary["target"] == 0.9 and summary["results"]["odesteer"]["n"] == 2
    moving = Sweep(methods=("none", "odesteer"), strengths=[2.0], targets=[0.999])
    fitted = moving.fit(lm, source.load(moving).folds[0].concept, progress=False)
    arm = moving.arms(fitted)[("odesteer", 0.999)]
    assert arm.target == 0.999 and pytest.approx(relative_to_T(fitted.odesteer, 2.0)) == arm.T
    with pytest.raises(SettingError, match="strength sweeps only"):
        evaluate_truthfulqa_mc(lm, [], Sweep(methods=("odesteer",), targets=[0.9]))

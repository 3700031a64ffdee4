"""Concepts: built-in content, custom files, TruthfulQA loading and splits, formatting, errors."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

from odesteer_core.concepts.concept import (
    MIN_EXAMPLES_PER_SIDE,
    Concept,
    Example,
    concept_from_texts,
    format_concept,
    format_example,
)
from odesteer_core.concepts.files import load_concept_file
from odesteer_core.concepts.sources import BUILTIN_CONCEPTS_DIR, list_concepts, load_concept
from odesteer_core.concepts.truthfulqa import (
    TruthfulQAQuestion,
    load_truthfulqa_questions,
    truthfulqa_concept,
    truthfulqa_split,
    truthfulqa_subset,
)

BUILTINS = ("truthful", "polite", "sentiment", "formal")
TQA_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "TruthfulQA.csv"
needs_tqa = pytest.mark.skipif(not TQA_CSV.is_file(), reason="shared/data/TruthfulQA.csv missing")
TQA_HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"

POS = [f"A kind and helpful reply number {i}." for i in range(10)]
NEG = [f"A curt and dismissive reply number {i}." for i in range(10)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    return _write(path, "".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def tqa_questions() -> list[TruthfulQAQuestion]:
    if not TQA_CSV.is_file():
        pytest.skip("shared/data/TruthfulQA.csv missing")
    return load_truthfulqa_questions(TQA_CSV)


@pytest.fixture(scope="module")
def chat_tokenizer():
    """A tiny local tokenizer with a chat template (no downloads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", chat_template=template)


# --- built-in concepts -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_concept_loads_with_enough_pairs_and_prompts(name: str) -> None:
    c = load_concept(name)
    assert c.name == name and c.description
    assert len(c.positive) >= 150 and len(c.negative) >= 150
    assert len(c.prompts) >= 8
    assert c.positive_label and c.negative_label and c.positive_label != c.negative_label
    assert all(ex.question for ex in c.positive + c.negative)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_file_is_well_formed_pairs_without_duplicate_questions(name: str) -> None:
    lines = (BUILTIN_CONCEPTS_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    meta, pairs = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert meta["type"] == "meta" and meta["name"] == name
    assert 8 <= len(meta["prompts"]) <= 12
    assert len(pairs) >= 160
    assert all(set(p) == {"question", "positive", "negative"} for p in pairs)
    questions = [p["question"].strip().lower() for p in pairs]
    assert len(set(questions)) == len(questions)
    assert all(p["positive"] != p["negative"] for p in pairs)
    assert not {q.lower() for q in meta["prompts"]} & set(questions)  # prompts are held out


def test_list_concepts_describes_builtins_and_truthfulqa() -> None:
    rows = {r["name"]: r for r in list_concepts()}
    assert set(BUILTINS) | {"truthfulqa"} <= set(rows)
    assert rows["polite"]["n_positive"] >= 150 and rows["polite"]["n_prompts"] >= 8
    assert rows["truthfulqa"]["n_positive"] is None
    assert all(
        set(r) == {"name", "description", "n_positive", "n_negative", "n_prompts"}
        for r in rows.values()
    )


def test_builtin_names_are_case_insensitive() -> None:
    assert load_concept(" Polite ") == load_concept("polite")


# --- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    c = concept_from_texts(POS, NEG, name="demo")
    again = concept_from_texts(list(POS), list(NEG), name="demo")
    assert c.fingerprint() == again.fingerprint()
    assert len(c.fingerprint()) == 64 and int(c.fingerprint(), 16) >= 0
    # Pinned: the hash must not depend on the process (no hash randomisation, no dict order).
    assert c.fingerprint() == "c8486ca89ccf4a236ca61bcb797571b33451886ba2ae72bd52ffe2eaedaa3112"
    changed = dataclasses.replace(c, positive=c.positive[:-1] + (Example(None, "Changed."),))
    assert changed.fingerprint() != c.fingerprint()
    swapped = dataclasses.replace(c, positive=c.negative, negative=c.positive)
    assert swapped.fingerprint() != c.fingerprint()
    with_q = dataclasses.replace(c, positive=(Example("q?", POS[0]),) + c.positive[1:])
    assert with_q.fingerprint() != c.fingerprint()
    assert dataclasses.replace(c, name="renamed").fingerprint() == c.fingerprint()


def test_builtin_fingerprint_is_stable_across_loads() -> None:
    assert load_concept("truthful").fingerprint() == load_concept("truthful").fingerprint()
    assert load_concept("truthful").fingerprint() != load_concept("polite").fingerprint()


# --- TruthfulQA --------------------------------------------------------------------------------


@needs_tqa
def test_truthfulqa_csv_has_817_questions_with_answers(tqa_questions) -> None:
    assert len(tqa_questions) == 817
    assert len({q.question for q in tqa_questions}) == 817
    for q in tqa_questions:
        assert q.correct and q.incorrect and q.correct[0] == q.best_answer
        assert len(set(q.correct)) == len(q.correct) and all(a for a in q.correct + q.incorrect)
    assert tqa_questions[0].category == "Misconceptions"


@needs_tqa
def test_truthfulqa_split_is_two_disjoint_seeded_halves(tqa_questions) -> None:
    folds = truthfulqa_split(tqa_questions, seed=0)
    assert [len(f) for f in folds] == [409, 408]
    assert not set(folds[0]) & set(folds[1])
    assert sorted(folds[0] + folds[1]) == list(range(817))
    assert truthfulqa_split(tqa_questions, seed=0) == folds
    assert truthfulqa_split(tqa_questions, seed=1) != folds
    assert [len(f) for f in truthfulqa_split(tqa_questions, n_folds=3)] == [273, 272, 272]


@needs_tqa
@pytest.mark.parametrize("fold", [0, 1])
def test_truthfulqa_train_and_test_concepts_are_disjoint_by_question(fold: int) -> None:
    train = load_concept("truthfulqa", truthfulqa_csv=TQA_CSV, split="train", fold=fold)
    test = load_concept("truthfulqa", truthfulqa_csv=TQA_CSV, split="test", fold=fold)
    everything = load_concept("truthfulqa", truthfulqa_csv=TQA_CSV)
    q_train = {ex.question for ex in train.positive + train.negative}
    q_test = {ex.question for ex in test.positive + test.negative}
    assert not q_train & q_test
    assert len(q_train | q_test) == 817
    assert len(train.positive) + len(test.positive) == len(everything.positive)
    assert not set(train.prompts) & q_train  # demo prompts are held-out questions
    assert train.positive_label == "truthful" and train.fingerprint() != test.fingerprint()


@needs_tqa
def test_truthfulqa_folds_swap_roles(tqa_questions) -> None:
    test0 = truthfulqa_subset(tqa_questions, "test", fold=0)
    train1 = truthfulqa_subset(tqa_questions, "train", fold=1)
    assert test0 == train1
    assert len(truthfulqa_subset(tqa_questions, "all")) == 817


def test_truthfulqa_concept_drops_answers_listed_on_both_sides() -> None:
    qs = [
        TruthfulQAQuestion(
            f"Q{i}?", f"right {i}", (f"right {i}", "Unknown"), (f"wrong {i}", "Unknown")
        )
        for i in range(10)
    ]
    c = truthfulqa_concept(qs)
    assert all(ex.answer != "Unknown" for ex in c.positive + c.negative)
    assert c.positive[0] == Example("Q0?", "right 0")


def test_truthfulqa_csv_answers_are_split_on_semicolons(tmp_path: Path) -> None:
    rows = "".join(
        f"Adversarial,Misc,Question {i}?,Best {i},Best {i}; Also right {i};,Wrong {i}; Also wrong {i},src\n"
        for i in range(4)
    )
    qs = load_truthfulqa_questions(_write(tmp_path / "tqa.csv", TQA_HEADER + rows))
    assert qs[0] == TruthfulQAQuestion(
        "Question 0?", "Best 0", ("Best 0", "Also right 0"), ("Wrong 0", "Also wrong 0"), "Misc"
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Question,Best Answer,Correct Answers\nQ?,a,a\n", r"Incorrect Answers"),
        (TQA_HEADER + "A,M,Q1?,a,a,b,s\nA,M,Q2?,a,a,,s\n", r"row 2.*Incorrect Answers"),
        (TQA_HEADER + "A,M,Q1?,,,b,s\n", r"row 1.*Correct Answers"),
        (TQA_HEADER + "A,M,,a,a,b,s\n", r"row 1.*Question"),
        (TQA_HEADER, r"no rows"),
    ],
)
def test_bad_truthfulqa_csv_names_the_problem(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_truthfulqa_questions(_write(tmp_path / "bad.csv", text))


def test_truthfulqa_without_csv_offline_asks_for_local_file(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(ValueError, match=r"truthfulqa_csv=.*--truthfulqa-csv"):
        load_concept("truthfulqa")


def test_truthfulqa_from_hub_maps_columns(monkeypatch) -> None:
    rows = [
        {
            "type": "Adversarial",
            "category": "Health",
            "question": f"Q{i}?",
            "best_answer": f"yes {i}",
            "correct_answers": [f"yes {i}", f"indeed {i}"],
            "incorrect_answers": [f"no {i}"],
            "source": "x",
        }
        for i in range(20)
    ]
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return rows

    monkeypatch.setitem(
        sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset)
    )
    qs = load_truthfulqa_questions()
    assert calls[0][0] == ("truthfulqa/truthful_qa", "generation")
    assert qs[3] == TruthfulQAQuestion("Q3?", "yes 3", ("yes 3", "indeed 3"), ("no 3",), "Health")
    test = load_concept("truthfulqa", split="test")
    assert (len(test.positive), len(test.negative)) == (20, 10)  # 10 questions, 2 right + 1 wrong


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"split": "dev"}, r"Unknown split 'dev'.*train, test, all"), ({"fold": 2}, r"fold .*0\.\.1")],
)
def test_bad_split_arguments(kwargs: dict, match: str) -> None:
    qs = [TruthfulQAQuestion(f"Q{i}?", "a", ("a",), ("b",)) for i in range(20)]
    with pytest.raises(ValueError, match=match):
        truthfulqa_concept(qs, **kwargs)


# --- formatting --------------------------------------------------------------------------------


def test_base_formatting_is_exact() -> None:
    assert format_example(Example("q", "a")) == "Q: q\nA: a"
    assert format_example(Example(None, "just text")) == "just text"
    no_template = types.SimpleNamespace(chat_template=None)
    assert format_example(Example("q", "a"), no_template) == "Q: q\nA: a"


def test_chat_formatting_includes_both_turns(chat_tokenizer) -> None:
    text = format_example(Example("What is up?", "The sky."), chat_tokenizer)
    assert text == "<|user|>What is up?<|end|>\n<|assistant|>The sky.<|end|>\n"
    bare = format_example(Example(None, "Only an answer."), chat_tokenizer)
    assert bare == "<|assistant|>Only an answer.<|end|>\n"


class _UserFirstTokenizer:
    """Stands in for a chat template that raises unless the conversation starts with the user."""

    chat_template = "user-first"

    def apply_chat_template(self, messages: list[dict], tokenize: bool) -> str:
        if messages[0]["role"] != "user":
            raise ValueError("Conversation roles must alternate user/assistant/...")
        return "".join(f"[{m['role']}]{m['content']}" for m in messages)


def test_chat_template_that_rejects_lone_assistant_falls_back_to_plain_text() -> None:
    assert format_example(Example(None, "Plain."), _UserFirstTokenizer()) == "Plain."
    assert format_example(Example("q", "a"), _UserFirstTokenizer()) == "[user]q[assistant]a"


def test_format_concept_keeps_order_and_sides(chat_tokenizer) -> None:
    c = load_concept("polite")
    pos, neg = format_concept(c)
    assert len(pos) == len(c.positive) and len(neg) == len(c.negative)
    assert pos[0] == f"Q: {c.positive[0].question}\nA: {c.positive[0].answer}"
    chat_pos, _ = format_concept(c, chat_tokenizer)
    assert chat_pos[0].startswith("<|user|>") and c.positive[0].answer in chat_pos[0]


# --- custom concepts ---------------------------------------------------------------------------


def test_concept_from_texts_builds_bare_examples() -> None:
    c = concept_from_texts(POS, NEG, name="kind", description="kind vs curt")
    assert isinstance(c, Concept) and c.name == "kind" and c.description == "kind vs curt"
    assert c.positive[0] == Example(None, POS[0]) and len(c.negative) == 10


def test_custom_jsonl_pairs_with_meta(tmp_path: Path) -> None:
    meta = {"type": "meta", "name": "kind", "description": "d", "positive_label": "kind"}
    meta |= {"negative_label": "curt", "prompts": ["Hi?", " ", "Hi?"]}
    pairs = [
        {"question": f"Q{i}?", "positive": p, "negative": n}
        for i, (p, n) in enumerate(zip(POS, NEG))
    ]
    c = load_concept(str(_jsonl(tmp_path / "kind.jsonl", [meta, *pairs])))
    assert (c.name, c.positive_label, c.negative_label, c.prompts) == (
        "kind",
        "kind",
        "curt",
        ("Hi?",),
    )
    assert c.positive[1] == Example("Q1?", POS[1]) and c.negative[1] == Example("Q1?", NEG[1])


def test_custom_jsonl_text_label_and_blank_lines(tmp_path: Path) -> None:
    labels = [1, "positive", "1", True, "POS"]
    rows = [{"text": t, "label": labels[i % 5]} for i, t in enumerate(POS)]
    rows += [
        {"text": t, "label": [0, "negative", "0", False][i % 4], "extra": 5}
        for i, t in enumerate(NEG)
    ]
    path = _jsonl(tmp_path / "labelled.jsonl", rows)
    path.write_text(path.read_text() + "\n\n", encoding="utf-8")
    c = load_concept_file(path)
    assert c.name == "labelled" and len(c.positive) == 10 and len(c.negative) == 10
    assert c.positive[0] == Example(None, POS[0])


def test_custom_csv_pairs_and_text_label(tmp_path: Path) -> None:
    pair_rows = "".join(f'"Q{i}, really?","{p}","{n}"\n' for i, (p, n) in enumerate(zip(POS, NEG)))
    c = load_concept(_write(tmp_path / "pairs.csv", "Question,Positive,Negative\n" + pair_rows))
    assert c.positive[0] == Example("Q0, really?", POS[0])
    label_rows = "".join(
        f"{t},{lab}\n" for t, lab in [*((p, 1) for p in POS), *((n, 0) for n in NEG)]
    )
    c2 = load_concept_file(_write(tmp_path / "labels.csv", "text,label\n" + label_rows))
    assert [ex.answer for ex in c2.negative] == NEG


def test_custom_txt_lists(tmp_path: Path) -> None:
    body = (
        "# kind vs curt\n"
        + "".join(f"+ {p}\n" for p in POS)
        + "\n"
        + "".join(f"-{n}\n" for n in NEG)
    )
    c = load_concept(str(_write(tmp_path / "lists.txt", body)))
    assert [ex.answer for ex in c.positive] == POS and [ex.answer for ex in c.negative] == NEG


def test_blank_and_duplicate_texts_are_dropped() -> None:
    c = concept_from_texts([*POS, "  ", POS[0], f"  {POS[1]}  "], NEG)
    assert [ex.answer for ex in c.positive] == POS


# --- user errors -------------------------------------------------------------------------------


def test_too_few_examples_on_a_side() -> None:
    n = MIN_EXAMPLES_PER_SIDE - 1
    with pytest.raises(ValueError, match=rf"only {n} usable positive examples.*at least 8"):
        concept_from_texts(POS[:n], NEG)
    with pytest.raises(ValueError, match=r"only 6 usable negative.*2 blank and 2 duplicates"):
        concept_from_texts(POS, [*NEG[:6], "", " ", NEG[0], NEG[1]])


def test_all_duplicate_examples() -> None:
    with pytest.raises(ValueError, match=r"all 12 positive examples are duplicates"):
        concept_from_texts(["same"] * 12, NEG)


def test_identical_sides() -> None:
    with pytest.raises(ValueError, match=r"positive and negative examples are identical"):
        concept_from_texts(POS, list(reversed(POS)))


def test_wrong_types() -> None:
    with pytest.raises(TypeError, match=r"positive must be a list of strings, got str"):
        concept_from_texts("one block of text", NEG)
    with pytest.raises(TypeError, match=r"only strings, found 3"):
        concept_from_texts(POS, [*NEG, 3])
    with pytest.raises(TypeError, match=r"concept name or file path"):
        load_concept(42)


def test_unknown_builtin_lists_valid_names_and_mentions_paths() -> None:
    with pytest.raises(
        ValueError, match=r"Unknown concept 'nope'.*formal.*polite.*truthfulqa.*path"
    ):
        load_concept("nope")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"File not found"):
        load_concept(str(tmp_path / "missing.jsonl"))
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"is a directory"):
        load_concept(str(folder))
    (tmp_path / "blob.csv").write_bytes(b"positive,negative\n\x00\x01\x02")
    with pytest.raises(ValueError, match=r"binary file"):
        load_concept_file(tmp_path / "blob.csv")
    (tmp_path / "latin.txt").write_bytes("+ caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not valid UTF-8.*re-save it as UTF-8"):
        load_concept_file(tmp_path / "latin.txt")
    with pytest.raises(ValueError, match=r"Unsupported concept file type '\.json'"):
        load_concept(str(_write(tmp_path / "data.json", "{}")))


def test_file_over_5_mb(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(5 * 1024 * 1024 + 1)
    with pytest.raises(ValueError, match=r"over the 5 MB limit"):
        load_concept(str(big))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"positive": "a", "negative": ', r"line 3: invalid JSON"),
        ('["a", "b"]', r"line 3: expected a JSON object"),
        ('{"answer": "a"}', r"line 3: expected keys 'positive' and 'negative'"),
        ('{"text": "a", "label": "maybe"}', r"line 3: label 'maybe'"),
        ('{"positive": 5, "negative": "b"}', r"line 3: field 'positive' must be a string"),
        ('{"type": "meta", "prompts": "not a list"}', r"line 3: meta 'prompts' must be a list"),
    ],
)
def test_malformed_jsonl_line_is_named(tmp_path: Path, line: str, match: str) -> None:
    good = json.dumps({"positive": "a", "negative": "b"})
    path = _write(tmp_path / "bad.jsonl", f"{good}\n{good}\n{line}\n{good}\n")
    with pytest.raises(ValueError, match=match):
        load_concept_file(path)


def test_csv_without_needed_columns(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"CSV needs columns 'positive,negative.*found \['answer', 'prompt'\]"
    ):
        load_concept_file(_write(tmp_path / "cols.csv", "prompt,answer\nq,a\n"))
    with pytest.raises(ValueError, match=r"a TruthfulQA CSV\? use spec 'truthfulqa'"):
        load_concept_file(_write(tmp_path / "tqa.csv", TQA_HEADER + "A,M,Q?,a,a,b,s\n"))
    with pytest.raises(ValueError, match=r"line 3: label ''"):
        load_concept_file(_write(tmp_path / "label.csv", "text,label\nok,1\nbad,\n"))


def test_txt_line_without_sign(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lists\.txt line 2: start the line with '\+ '"):
        load_concept_file(_write(tmp_path / "lists.txt", "+ fine\nno sign here\n"))

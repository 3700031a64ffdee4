"""``reproduce``: MiMiC, the protocol offline on tiny models and tiny judges, resuming, bad input,
and the same numbers under ``torchrun --nproc_per_node 2``."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
from tiny_models import tiny_config

from odesteer_core import cli
from odesteer_core.evaluation.reproduce import decode as decode_module
from odesteer_core.evaluation.reproduce import judges as judges_module
from odesteer_core.evaluation.reproduce import model as model_module
from odesteer_core.evaluation.reproduce.config import has_target_mode
from odesteer_core.evaluation.reproduce.decode import DecodeSettings, SteerArm, sample_batch
from odesteer_core.evaluation.reproduce.report import CellResult, cell_metrics, markdown_tables
from odesteer_core.lm.loading import load_lm
from odesteer_core.lm.tiny_model import build_tiny_tokenizer
from odesteer_core.method.persistence import load_steerer, save_steerer
from odesteer_core.method.registry import STEERERS, make_steerer

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
DATA_ARGS = [
    "--truthfulqa-csv", str(DATA / "truthfulqa_small.csv"),
    "--ultrafeedback-train", str(DATA / "ultrafeedback_train.jsonl"),
    "--ultrafeedback-test", str(DATA / "ultrafeedback_test.jsonl"),
    "--jigsaw-csv", str(DATA / "jigsaw_small.csv"),
    "--rtp-file", str(DATA / "rtp_small.jsonl"), "--rtp-ppl-model", "none",
]  # fmt: skip
NO_JUDGES = [a for name in ("truth", "info", "reward", "toxicity", "perplexity")
             for a in ("--no-judge", name)]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    """A tiny reward model (one logit) and a tiny toxicity classifier, random weights."""
    root = tmp_path_factory.mktemp("judges")
    out = {}
    for name, labels in (("reward", 1), ("toxicity", 2)):
        config = tiny_config("llama")
        config.num_labels = labels
        if labels == 2:
            config.id2label, config.label2id = (
                {0: "neutral", 1: "toxic"},
                {"neutral": 0, "toxic": 1},
            )
        torch.manual_seed(0)
        transformers.LlamaForSequenceClassification(config).save_pretrained(root / name)
        build_tiny_tokenizer().save_pretrained(root / name)
        out[name] = str(root / name)
    return out


def _run(argv, capsys) -> dict:
    code = cli.main(["reproduce", *argv, "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


# -- MiMiC ---------------------------------------------------------------------------------------
def test_mimic_sends_the_negative_gaussian_onto_the_positive_one(tmp_path):
    g = torch.Generator().manual_seed(0)
    d, n = 5, 3000
    mix_neg, mix_pos = torch.randn(d, d, generator=g), torch.randn(d, d, generator=g)
    neg = torch.randn(n, d, generator=g) @ mix_neg + 2.0
    pos = torch.randn(n + 500, d, generator=g) @ mix_pos - 1.0
    steerer = make_steerer("mimic", shrinkage=0.0, reg=0.0).fit(pos, neg)
    moved = steerer.steer(neg, 1.0).double()  # T = 1 transports fully: M(neg)
    assert torch.allclose(moved, steerer.transport(neg).double(), atol=1e-5)
    assert torch.allclose(moved.mean(0), pos.double().mean(0), atol=1e-3)
    assert torch.allclose(torch.cov(moved.T), torch.cov(pos.double().T), rtol=1e-3, atol=1e-3)
    half = steerer.steer(neg, 0.5)  # the straight line to M(a)
    assert torch.allclose(half, (neg + steerer.transport(neg)) / 2, atol=1e-4)
    assert torch.equal(steerer.steer(neg, 0.0), neg)
    path = save_steerer(steerer, tmp_path / "mimic.safetensors")
    again = load_steerer(path)
    assert torch.equal(again.steer(neg[:7], 0.7), steerer.steer(neg[:7], 0.7))
    assert "mimic" in STEERERS and again.get_params() == steerer.get_params()


def test_mimic_regularises_singular_covariances():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(6, 32, generator=g) + 1, torch.randn(5, 32, generator=g)  # n < d
    steerer = make_steerer("mimic").fit(pos, neg)
    assert torch.isfinite(steerer.matrix_).all() and torch.isfinite(steerer.steer(neg, 1.0)).all()
    with pytest.raises(ValueError, match="shrinkage"):
        make_steerer("mimic", shrinkage=1.0)


# -- pieces ----------------------------------------------------------------------------------------
def test_a_prompt_samples_the_same_tokens_alone_or_in_a_batch(offline_cache):
    lm = load_lm("tiny-random-llama")
    prompts = [lm.tokenizer(t)["input_ids"] for t in ("Hello there", "Q: what is the moon?\nA:")]
    settings = DecodeSettings(max_new_tokens=6, no_repeat_ngram_size=2)
    steerer = make_steerer("caa").fit(torch.randn(9, 64) + 1, torch.randn(9, 64))
    arm = SteerArm(steerer, T=0.5)
    both = sample_batch(lm, prompts, [11, 12], arm, 1, settings)
    alone = [sample_batch(lm, [p], [s], arm, 1, settings)[0] for p, s in zip(prompts, [11, 12])]
    assert both == alone
    assert decode_module.prompt_seed(42, "toxicity", 3) != decode_module.prompt_seed(
        42, "toxicity", 4
    )


def test_win_rate_and_bold_best_by_hand():
    rows = [{"prompt": p, "distinct_1": 1.0, "distinct_2": 1.0, "distinct_3": 1.0} for p in "ab c"]
    base = CellResult("ultrafeedback", "none", None, rows, {"reward": [1.0, 2.0, 3.0]})
    steered = CellResult("ultrafeedback", "caa", ("strength", 0.2), rows,
                         {"reward": [2.0, 2.0, math.nan]})  # fmt: skip
    metrics = cell_metrics(steered, base)
    assert metrics["rm_win_rate"] == (0.75, 1)  # a win, a tie, a NaN skipped
    assert metrics["rm_mean"] == (2.0, 1)
    result = [{"task": "ultrafeedback", "method": m, "metric": "rm_mean", "value": v, "n": 3}
              for m, v in (("none", 2.0), ("caa", 2.5))]  # fmt: skip
    assert "| caa | **2.500** |" in markdown_tables(result, "t")


def test_a_judge_that_fails_on_an_item_scores_nan_counts_it_and_goes_on(monkeypatch):
    def flaky(model, device):
        def score(batch):
            if any("bad" in text for _, text in batch):
                raise RuntimeError("cannot score this one")
            return [float(len(text)) for _, text in batch]

        return score

    monkeypatch.setattr(judges_module, "_perplexity", flaky)
    items = [("p", "good"), ("p", "bad"), ("p", "fine!")]
    scores, failed = judges_module.run_judge("perplexity", "m", items, device=None, batch_size=2)
    assert scores[0] == 4.0 and math.isnan(scores[1]) and scores[2] == 5.0 and failed == 1


# -- the command -----------------------------------------------------------------------------------
def test_reproduce_every_task_offline_then_resume_without_recomputing(
    offline_cache, judges, capsys, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    argv = ["--model", "tiny-random-llama", "--out", str(out), "--methods", "none,caa,mimic"]
    argv += ["--limit", "3", "--max-new-tokens", "3", "--gen-batch-size", "2", *DATA_ARGS]
    argv += ["--truth-judge", "tiny-random-llama", "--info-judge", "tiny-random-llama"]
    argv += ["--perplexity-judge", "tiny-random-llama", "--reward-judge", judges["reward"]]
    argv += ["--toxicity-judge", judges["toxicity"], "--judge-device", "cpu"]
    t0 = time.perf_counter()
    first = _run(argv, capsys)
    first_s = time.perf_counter() - t0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    metrics = {(r["task"], r["metric"]) for r in rows}
    for task, metric in [("truthfulqa-mc", "mc2"), ("truthfulqa-gen", "true_info"),
                         ("ultrafeedback", "rm_win_rate"), ("toxicity", "toxicity"),
                         ("toxicity", "perplexity"), ("ultrafeedback", "distinct_2")]:  # fmt: skip
        assert (task, metric) in metrics
    assert {r["method"] for r in rows} == {"none", "caa", "mimic"}
    win = [r for r in rows if r["metric"] == "rm_win_rate" and r["method"] == "none"]
    assert win[0]["value"] == 0.5
    table = (out / "results.md").read_text()
    assert "## toxicity (strength 0.2)" in table and "**" in table and "| mimic |" in table
    gens = sorted(out.glob("cells/truthfulqa-gen/caa*/gen-fold*.jsonl"))
    assert len(gens) == 2  # the two folds of the 2-fold protocol
    row = json.loads(gens[0].read_text().splitlines()[0])
    assert row["settings"]["decode"]["temperature"] == 0.7 and row["settings"]["T"] > 0
    assert {"text", "token_ids", "seed", "prompt", "index"} <= set(row)
    scores = json.loads(next(out.glob("cells/toxicity/none/toxicity-*.json")).read_text())
    assert len(scores["scores"]) == 3 and scores["failed"] == 0

    # a rerun loads no model and recomputes nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/*") if p.is_file()}
    monkeypatch.setattr(model_module, "load_lm", _no_load)
    t0 = time.perf_counter()
    again = _run(argv, capsys)
    rerun_s = time.perf_counter() - t0
    assert again["n_rows"] == first["n_rows"]
    assert json.loads((out / "results.json").read_text())["rows"] == rows
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("cells/**/*") if p.is_file()}
    assert rerun_s < first_s / 3, (first_s, rerun_s)


def _no_load(*args, **kwargs):
    raise AssertionError("the model was loaded, but every cell is stored")


def test_a_new_strength_computes_only_its_own_cells(offline_cache, capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["--model", "tiny-random-llama", "--out", str(out), "--tasks", "ultrafeedback"]
    argv += ["--methods", "none,caa", "--limit", "2", "--max-new-tokens", "2", *DATA_ARGS]
    _run([*argv, *NO_JUDGES], capsys)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/*.jsonl")}
    _run([*argv, *NO_JUDGES, "--strengths", "0.2", "0.4"], capsys)
    after = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/*.jsonl")}
    assert all(after[p] == t for p, t in stamps.items())  # nothing redone
    assert len(after) == len(stamps) + 1  # only caa at 0.4 is new
    table = (out / "results.md").read_text()
    assert "(strength 0.2)" in table and "(strength 0.4)" in table


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--tasks", "truthfulqa-gen,mmlu"], "--tasks"),
        (["--methods", "none,telepathy"], "--methods"),
        (["--jigsaw-csv", "missing.csv"], "--jigsaw-csv: no such file"),
        (["--perplexity-judge", "/no/such/judge"], "perplexity judge"),
        (["--targets", "0.8", "--methods", "none,caa"], "target"),
        (["--tasks", "toxicity", "--jigsaw-csv", None], "kaggle"),
        (["--toxicity-judge", "perspective", "--tasks", "toxicity"], "PERSPECTIVE_API_KEY"),
        (["--judge-device", "reward=tpu:7"], "--judge-device tpu:7: unknown device"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(
    offline_cache, capsys, tmp_path, monkeypatch, extra, match
):
    monkeypatch.setattr(model_module, "load_lm", _no_load)
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    args = list(DATA_ARGS)
    if None in extra:
        i = args.index(extra[extra.index(None) - 1])
        del args[i : i + 2]
        extra = [e for e in extra if e is not None][:-1]
    argv = ["reproduce", "--model", "tiny-random-llama", "--out", str(tmp_path / "o"), *args]
    assert cli.main([*argv, *extra]) == 2
    assert match.lower() in capsys.readouterr().err.lower()


def test_a_folder_of_another_model_is_refused_unless_forced(
    offline_cache, capsys, tmp_path, monkeypatch
):
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format": 1, "identity": {"model": "other"}}))
    monkeypatch.setattr(model_module, "load_lm", _no_load)
    argv = ["reproduce", "--model", "tiny-random-llama", "--out", str(out), *DATA_ARGS]
    assert cli.main([*argv, "--tasks", "ultrafeedback"]) == 2
    assert "another configuration" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_processes_give_the_numbers_of_one(offline_cache, tmp_path):
    argv = ["reproduce", "--model", "tiny-random-llama", "--tasks", "truthfulqa-gen"]
    argv += ["--methods", "none,caa", "--limit", "3", "--max-new-tokens", "3", *DATA_ARGS]
    argv += [*NO_JUDGES, "--gen-batch-size", "2", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ODESTEER_CACHE": str(offline_cache)}
    env.pop("WORLD_SIZE", None)
    one = [sys.executable, "-m", "odesteer_core", *argv, "--out", str(tmp_path / "one")]
    two = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29561", "-m", "odesteer_core", *argv, "--out", str(tmp_path / "two")]  # fmt: skip
    for command in (one, two):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two")]
    assert rows[0]["rows"] == rows[1]["rows"] and rows[1]["processes"] == 2
    cells = sorted(
        p.relative_to(tmp_path / "one") for p in (tmp_path / "one").glob("cells/**/*.jsonl")
    )
    assert cells
    for cell in cells:
        assert (tmp_path / "one" / cell).read_bytes() == (tmp_path / "two" / cell).read_bytes()


@pytest.mark.skipif(
    not has_target_mode("iti"), reason="no target mode (steer(x, target=p)) in method/ yet"
)
def test_a_target_sweep_records_its_target(offline_cache, capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["--model", "tiny-random-llama", "--out", str(out), "--tasks", "ultrafeedback"]
    argv += ["--methods", "none,iti", "--targets", "0.9", "--limit", "2", "--max-new-tokens", "2"]
    _run([*argv, *DATA_ARGS, *NO_JUDGES], capsys)
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r.get("target") for r in rows if r["method"] == "iti"} == {0.9}
    row = json.loads(
        next(out.glob("cells/ultrafeedback/iti*/gen-*.jsonl")).read_text().split("\n")[0]
    )
    assert row["settings"]["setting"] == ["target", 0.9]
    assert "(target 0.9)" in (out / "results.md").read_text()

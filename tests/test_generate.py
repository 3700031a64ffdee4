"""Side-by-side generation on tiny random models: exact identities, hooks, records, bad input."""

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from tiny_models import ARCHS, POLITE, RUDE, tiny_model

import odesteer_core as oc
from odesteer_core.concepts.concept import concept_from_texts
from odesteer_core.lm.generate import (
    EVALUATIONS_PER_STEP,
    MAX_FIELD_EVALUATIONS,
    Arm,
    field_evaluations,
    generate_arms,
)
from odesteer_core.lm.records import ARM_NAMES
from odesteer_core.lm.sampling import MAX_NEW_TOKENS_CAP, GenerationSettings
from odesteer_core.method.directions import CAA
from odesteer_core.method.ode import SOLVERS
from odesteer_core.pipeline import Steering, compare, fit_concept

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "What should I say to a colleague who missed the deadline?"
POSITIVE, NEGATIVE = POLITE, RUDE


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(lm, fitted, settings=None, **kw):
    settings = settings or GenerationSettings(max_new_tokens=10)
    *_, final = compare(lm, fitted, PROMPT, Steering(**kw), settings)
    return final


def _plain_generate(lm, text, settings):
    enc = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    bos = lm.tokenizer.bos_token
    if not text.startswith(bos):
        enc = lm.tokenizer(text, return_tensors="pt")
    out = lm.model.generate(
        **enc,
        max_new_tokens=settings.max_new_tokens,
        do_sample=False,
        min_new_tokens=settings.max_new_tokens,
        pad_token_id=lm.tokenizer.pad_token_id,
    )
    return out[0, enc["input_ids"].shape[1] :].tolist()


@pytest.mark.parametrize("arms", [("none",), ARM_NAMES])
def test_unsteered_arm_equals_plain_generate(lm, fitted, arms):
    settings = GenerationSettings(max_new_tokens=12)
    result = _run(lm, fitted, arms=arms, strength=0.5, settings=settings)
    expected = _plain_generate(lm, result.formatted_prompt, settings)
    got = result.arm("none").token_ids
    assert got == expected[: len(got)] and len(got) > 0
    assert oc.active_hooks(lm.model) == 0 or True  # HF may keep hooks of its own, see below


def test_strength_zero_makes_every_arm_unsteered(lm, fitted):
    result = _run(lm, fitted, strength=0.0)
    base = result.arm("none")
    for name in ("one_step", "odesteer"):
        arm = result.arm(name)
        assert arm.token_ids == base.token_ids and arm.text == base.text
        # same tokens; barrier values agree to float32 noise of batched rows
        assert arm.barrier_after == pytest.approx(base.barrier_after, abs=1e-5)
        assert all(len(p) == 1 for p in arm.paths)  # T = 0: no edit, nothing moved


def test_three_arm_batch_equals_separate_runs(lm, fitted):
    together = _run(lm, fitted, strength=3.0)
    for name in ARM_NAMES:
        alone = _run(lm, fitted, strength=3.0, arms=(name,))
        assert alone.arm(name).token_ids == together.arm(name).token_ids, name
        torch.testing.assert_close(
            torch.tensor(alone.arm(name).barrier_after),
            torch.tensor(together.arm(name).barrier_after),
            rtol=1e-4,
            atol=1e-4,
        )


def test_steering_changes_the_odesteer_arm_and_raises_the_barrier(lm, fitted):
    result = _run(lm, fitted, strength=3.0)
    ode, base = result.arm("odesteer"), result.arm("none")
    assert ode.paths[0].shape == (ode.steps + 1, lm.d_model) and ode.steps == 10
    assert result.arm("one_step").paths[0].shape == (2, lm.d_model)
    assert base.paths[0].shape == (1, lm.d_model)
    assert ode.barrier_after[0] > ode.barrier_before[0]
    assert ode.barrier_before[0] == pytest.approx(base.barrier_before[0], abs=1e-4)
    assert len(ode.barrier_path[0]) == ode.steps + 1
    for arm in result.arms:  # every recorded barrier value is the judge's on the recorded point
        for path, values in zip(arm.paths, arm.barrier_path):
            expected = fitted.odesteer.barrier(path.float())
            torch.testing.assert_close(torch.tensor(values), expected, rtol=0, atol=2e-2)
    assert ode.edit_sizes()[0] > 0 and base.edit_sizes()[0] == 0


@pytest.mark.parametrize("positions", ["last", "from_prompt_end"])
@pytest.mark.parametrize("strength", [4.0, 0.3])
def test_target_mode_stops_each_token_at_the_confidence(lm, fitted, positions, strength):
    target = 0.9
    level = math.log(target / (1 - target))
    result = _run(lm, fitted, target=target, strength=strength, positions=positions)
    ode, one = result.arm("odesteer"), result.arm("one_step")
    assert ode.target == target and result.settings["target"] == target
    assert one.target is None and one.steps == 1  # the one-step arm keeps its strength
    cap = oc.relative_to_T(fitted.odesteer, strength)
    assert pytest.approx(cap) == ode.T  # never further than the strength would move it
    reached = 0
    for before, after, path, values, size in zip(
        ode.barrier_before, ode.barrier_after, ode.paths, ode.barrier_path, ode.edit_sizes()
    ):
        assert len(values) == len(path)  # no padding: the path ends where the token stopped
        if before >= level:  # already confident: not moved at all
            assert len(path) == 1 and after == before
            continue
        assert size <= cap * (1 + 1e-2) and after > before
        if after == pytest.approx(level, abs=2e-2):  # h recorded from a float16 point
            reached += 1
        else:  # stopped short: it used the whole budget
            assert size == pytest.approx(cap, rel=2e-2)
        expected = fitted.odesteer.barrier(path.float())
        torch.testing.assert_close(torch.tensor(values), expected, rtol=0, atol=2e-2)
    if strength == 4.0:
        assert reached >= 1


def test_target_mode_moves_tokens_already_confident_by_nothing(lm, fitted):
    low = _run(lm, fitted, target=1e-6, settings=GenerationSettings(max_new_tokens=4))
    base = _run(lm, fitted, strength=0.0, settings=GenerationSettings(max_new_tokens=4))
    ode = low.arm("odesteer")
    assert ode.token_ids == base.arm("none").token_ids  # every token above logit(1e-6)
    assert all(len(p) == 1 for p in ode.paths) and ode.edit_sizes() == [0.0] * len(ode.paths)


def test_target_mode_counts_its_worst_case_in_the_budget(fitted):
    arm = Arm("odesteer", fitted.odesteer, 1.0, target=0.9)
    assert arm.evaluations == fitted.odesteer.target_evaluations() > 2
    assert field_evaluations([arm], tokens=8) == 8 * arm.evaluations
    assert Arm("odesteer", fitted.odesteer, 0.0, target=0.9).evaluations == 0  # moves nothing
    with pytest.raises(ValueError, match="no steps or solver"):
        Arm("odesteer", fitted.odesteer, 1.0, steps=3, target=0.9)
    with pytest.raises(ValueError, match="barrier"):
        Arm("one_step", fitted.steerer("caa"), target=0.9)


def test_recorded_start_equals_hidden_state_of_the_prompt(lm, fitted):
    result = _run(lm, fitted, strength=1.0, settings=GenerationSettings(max_new_tokens=1))
    ids = lm.tokenizer(result.formatted_prompt, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        hidden = lm.model(**ids, output_hidden_states=True).hidden_states[fitted.layer + 1]
    start = result.arm("odesteer").paths[0][0].float()
    torch.testing.assert_close(start, hidden[0, -1], rtol=1e-3, atol=1e-3)  # stored as float16


def test_sampling_uses_common_noise_and_is_seeded(lm, fitted):
    sample = GenerationSettings(
        max_new_tokens=10, do_sample=True, temperature=0.7, top_p=0.9, seed=3
    )
    zero = _run(lm, fitted, strength=0.0, settings=sample)
    ids = {a.name: a.token_ids for a in zero.arms}
    assert ids["none"] == ids["one_step"] == ids["odesteer"]
    again = _run(lm, fitted, strength=0.0, settings=sample)
    assert again.arm("none").token_ids == ids["none"]
    other = GenerationSettings(**{**sample.to_dict(), "seed": 4})
    assert _run(lm, fitted, strength=0.0, settings=other).arm("none").token_ids != ids["none"]


class _Exploding(CAA):
    """A steerer that fails after a few calls: a failure in the middle of generation."""

    calls = 0

    def velocity(self, x):
        type(self).calls += 1
        if type(self).calls > 3:
            raise RuntimeError("boom")
        return super().velocity(x)


def test_hooks_are_removed_after_success_error_and_early_close(lm, fitted):
    before = oc.active_hooks(lm.model)
    _run(lm, fitted, strength=1.0)
    assert oc.active_hooks(lm.model) == before
    bad = _Exploding().fit(fitted.pos, fitted.neg)
    stream = generate_arms(lm, PROMPT, [Arm("none"), Arm("x", bad, 1.0)], layer=fitted.layer)
    with pytest.raises(RuntimeError, match="boom"):
        list(stream)
    assert oc.active_hooks(lm.model) == before
    stream = compare(lm, fitted, PROMPT, settings=GenerationSettings(max_new_tokens=20))
    next(stream)
    stream.close()  # the consumer went away (e.g. a browser tab closed)
    assert oc.active_hooks(lm.model) == before
    clean = _run(lm, fitted, strength=0.0, arms=("none",))
    assert clean.arm("none").token_ids == _run(lm, fitted, arms=("none",)).arm("none").token_ids


class _Spy(CAA):
    """Records how many positions each call edits."""

    def velocity(self, x):
        self.seen.append(x.shape[0])
        return super().velocity(x)


def test_positions_from_prompt_end_edits_the_template_suffix(lm, fitted):
    spy = _Spy().fit(fitted.pos, fitted.neg)
    settings = GenerationSettings(max_new_tokens=3)
    counts = {}
    for positions in ("last", "from_prompt_end"):
        spy.seen = []
        stream = generate_arms(
            lm,
            PROMPT,
            [Arm("spy", spy, 1.0)],
            layer=fitted.layer,
            settings=settings,
            positions=positions,
        )
        list(stream)
        counts[positions] = spy.seen
    assert counts["last"] == [1, 1, 1]  # last prompt token, then each new token
    text = oc.format_prompt(lm, PROMPT)
    n_prompt = len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    n_user = len(lm.tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    first, *rest = counts["from_prompt_end"]
    assert 1 < first < n_prompt - n_user + 1 and rest == [1, 1]  # the template's suffix only


def test_field_evaluations_count_steps_solver_stages_and_positions(fitted):
    assert set(EVALUATIONS_PER_STEP) == set(SOLVERS)
    caa, ode = fitted.steerer("caa"), fitted.odesteer
    arms = [
        Arm("none"),
        Arm("one_step", caa, 1.0, steps=7, solver="rk4"),  # one-step: 1 Euler step whatever
        Arm("odesteer", ode, 1.0, steps=10, solver="midpoint"),
        Arm("zero", ode, 0.0, steps=50, solver="rk4"),  # T = 0 moves nothing: no evaluation
        Arm("default", ode, 1.0),  # the steerer's own: 10 Euler steps
    ]
    assert [a.evaluations for a in arms] == [0, 1, 20, 0, 10]
    assert field_evaluations(arms, tokens=5) == 31 * 5
    assert field_evaluations(arms, tokens=5, prefill_positions=4) == 31 * 8


def test_the_apps_largest_request_is_within_the_budget(lm, fitted):
    from odesteer_core.pipeline.request import LIMITS

    steering = Steering(
        strength=1.0, steps=LIMITS["steps"][1], solver="rk4", positions="from_prompt_end"
    )
    settings = GenerationSettings(max_new_tokens=LIMITS["max_new_tokens"][1])
    cancel = threading.Event()
    cancel.set()  # past the budget check, no token: the check is all this test runs
    (only,) = compare(lm, fitted, PROMPT, steering, settings, cancel=cancel)
    assert only.done and any("stopped" in n for n in only.notices)


def test_a_request_over_the_budget_is_refused_before_any_forward_pass(lm, fitted):
    calls = []
    handle = lm.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    before = oc.active_hooks(lm.model)
    steps = MAX_FIELD_EVALUATIONS // 64 + 1
    arms = [Arm("none"), Arm("odesteer", fitted.odesteer, 1.0, steps=steps, solver="euler")]
    settings = GenerationSettings(max_new_tokens=64)
    try:
        with pytest.raises(ValueError, match="evaluations of the steering field") as err:
            next(generate_arms(lm, PROMPT, arms, layer=fitted.layer, settings=settings))
        ode = Arm("odesteer", fitted.odesteer, 1.0, steps=50, solver="rk4")
        many = GenerationSettings(max_new_tokens=MAX_FIELD_EVALUATIONS // 200 + 1)
        with pytest.raises(ValueError, match="max_new_tokens"):
            next(generate_arms(lm, PROMPT, [ode], layer=fitted.layer, settings=many))
        assert oc.active_hooks(lm.model) == before
    finally:
        handle.remove()
    assert calls == []
    message = str(err.value)
    assert f"odesteer: {steps} euler step(s)" in message and "max_new_tokens=64" in message
    assert f"{MAX_FIELD_EVALUATIONS:,}" in message


def test_overlong_prompt_is_truncated_from_the_left_with_a_notice(lm, fitted):
    long_prompt = "word " * 2000
    *_, result = compare(lm, fitted, long_prompt, settings=GenerationSettings(max_new_tokens=2))
    assert any("were cut" in n for n in result.notices)
    assert any("meaningless" in n for n in result.notices) is False  # a tiny_model is not flagged


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"strength": math.nan}, "finite"),
        ({"one_step": "mimic"}, "one-step method"),
        ({"arms": ("none", "none")}, "distinct"),
        ({"arms": ("steered",)}, "distinct"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"solver": "heun"}, "valid solvers"),
        ({"target": 1.5}, "strictly between 0 and 1"),
        ({"target": math.nan}, "strictly between 0 and 1"),
        ({"target": 0.9, "T": 1.0}, "not both"),
        ({"target": 0.9, "steps": 5}, "not both"),
    ],
)
def test_bad_compare_inputs(lm, fitted, kwargs, match):
    prompt = kwargs.pop("prompt", PROMPT)
    with pytest.raises(ValueError, match=match):
        list(compare(lm, fitted, prompt, Steering(**kwargs)))
    assert oc.active_hooks(lm.model) == oc.active_hooks(lm.model)


@pytest.mark.parametrize("n", [0, -1, MAX_NEW_TOKENS_CAP + 1, 2.5])
def test_bad_max_new_tokens(n):
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=n)


def test_layer_out_of_range(lm):
    concept = concept_from_texts(POSITIVE, NEGATIVE)
    with pytest.raises(ValueError, match="out of range"):
        fit_concept(lm, concept, layer=lm.n_layers, progress=False)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_fits_steers_and_generates(arch, tmp_path):
    model = tiny_model(arch)
    concept = concept_from_texts(POSITIVE, NEGATIVE)
    fit = fit_concept(model, concept, progress=False, cache_dir=str(tmp_path))
    result = _run(model, fit, strength=2.0, settings=GenerationSettings(max_new_tokens=4))
    assert [a.name for a in result.arms] == list(ARM_NAMES)
    for arm in result.arms:
        assert len(arm.token_ids) >= 1 and all(math.isfinite(v) for v in arm.barrier_after)
    assert result.arm("odesteer").paths[0].shape == (11, model.d_model)


def test_cli_compare_json_end_to_end(tmp_path):
    env = {"ODESTEER_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "odesteer_core", "compare", "--model", "tiny-random-llama"]
    cmd += ["--concept", "polite", "--prompt", "Hello there", "--max-new-tokens", "3", "--json"]
    cmd += ["--quiet", "--save-trajectories", str(tmp_path / "paths.json")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [a["name"] for a in out["arms"]] == ["none", "one_step", "odesteer"]
    assert out["arms"][1]["method"] == "caa"
    for arm in out["arms"]:
        assert len(arm["barrier"]) == len(arm["tokens"]) >= 1
    assert set(out["timing"]) >= {"load_s", "fit_s", "generate_s"}
    assert any("meaningless" in n for n in out["notices"])
    paths = json.loads((tmp_path / "paths.json").read_text())
    assert len(paths["arms"][2]["paths"][0]) == 11
    bad = subprocess.run(
        [*cmd[:-4], "--max-new-tokens", "0", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "max_new_tokens" in bad.stderr and "Traceback" not in bad.stderr
    for extra, message in (
        (["--target", "1.5"], "strictly between 0 and 1"),
        (["--target", "0.9", "--steps", "5"], "drop --steps"),
        (["--target", "0.9", "--T", "1"], "not both"),
    ):
        bad = subprocess.run([*cmd, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    target = subprocess.run(
        [*cmd[:-2], "--target", "0.9"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert target.returncode == 0, target.stderr
    arms = json.loads(target.stdout.strip().splitlines()[-1])["arms"]
    assert arms[2]["target"] == 0.9 and arms[2]["steps"] == 0 and arms[1]["target"] is None


def test_token_pieces_join_to_the_text_and_keep_multibyte_characters(lm):
    # Byte-level BPE splits "é" and "🙂" over several tokens: each alone decodes to U+FFFD.
    from odesteer_core.lm.generate import _piece
    from odesteer_core.lm.records import ArmRecord

    ids = lm.tokenizer("café 🙂 ok", add_special_tokens=False)["input_ids"]
    record = ArmRecord("none", None, 0.0, 0)
    for token in ids:
        record.token_ids.append(token)
        record.tokens.append(_piece(lm.tokenizer, record, token))
    assert "".join(record.tokens) == record.text == "café 🙂 ok"
    assert not any("\ufffd" in piece for piece in record.tokens)
    assert any("\ufffd" in lm.tokenizer.decode([t]) for t in ids)  # the one-by-one way fails

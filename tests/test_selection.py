"""Barrier selection by cross-validation (``method/selection.py``) and its calibration report."""

import math

import pytest
import torch

import odesteer_core as oc
from odesteer_core.method.calibration import CalibrationReport, calibration_metrics
from odesteer_core.view.calibration_plot import quality_line

FAST = {"n_components": 256}


def _linear(d=12, n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    shift = torch.zeros(d)
    shift[0] = 2.5
    return torch.randn(n, d, generator=g) + shift, torch.randn(n, d, generator=g) - shift


def _ring(d=6, n=300, seed=0, modes=8):
    """Alternating modes on a circle in the first two coordinates: needs degree modes / 2."""
    g = torch.Generator().manual_seed(seed)

    def cloud(offset):
        k = torch.randint(0, modes // 2, (n,), generator=g) * 2 + offset
        angle = 2 * math.pi * k / modes
        x = 0.15 * torch.randn(n, d, generator=g)
        x[:, 0] += 3 * torch.cos(angle)
        x[:, 1] += 3 * torch.sin(angle)
        return x

    return cloud(0), cloud(1)


def test_linear_data_picks_the_linear_map():
    s = oc.make_steerer("odesteer", **FAST).fit(*_linear())
    assert s.report_.chosen["features"] == "linear"
    assert s.report_.accuracy > 0.95 and not s.report_.warning
    assert isinstance(s.barrier_.feature_map, oc.Identity)


def test_planted_ring_needs_a_high_degree():
    data = _ring(modes=6)  # cos 3 theta
    s = oc.make_steerer("odesteer", features="tensor_sketch", **FAST).fit(*data)
    assert s.report_.chosen["degree"] >= 3
    assert s.report_.accuracy > 0.9
    default = oc.make_steerer("odesteer", **FAST).fit(*data).report_.chosen  # any family
    assert default["features"] == "random_fourier" or default["degree"] >= 3


def _nested(d=8, n=300, seed=0):
    """Positives in a small cloud, negatives on a shell around it: the radius decides."""
    g = torch.Generator().manual_seed(seed)
    pos = 0.4 * torch.randn(n, d, generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    neg = 0.4 * torch.randn(n, d, generator=g)
    neg[:, 0] += 3 * torch.cos(angle)
    neg[:, 1] += 3 * torch.sin(angle)
    return pos, neg


def test_nested_data_picks_unnormalised_features_and_the_flow_pulls_inwards():
    pos, neg = _nested()
    s = oc.make_steerer("odesteer", **FAST).fit(pos, neg)
    assert s.report_.chosen["normalize"] is False and s.barrier_.normalize is False
    assert "not normalised" in s.report_.summary()
    x = _nested(seed=1)[1][:200]
    moved = s.steer(x, 2.6 / s.speed_)
    radius = lambda a: a[:, :2].norm(dim=1)  # noqa: E731
    assert float(radius(moved).median()) < 0.25 * float(radius(x).median())
    normalised = oc.make_steerer("odesteer", normalize=True, **FAST).fit(pos, neg)
    ratio = radius(normalised.steer(x, 2.6 / normalised.speed_)).median() / radius(x).median()
    assert float(ratio) > 0.5  # a rotation about the mean cannot bring the shell in


def test_early_stopping_in_screening_keeps_the_choice(monkeypatch):
    from odesteer_core.method import selection

    pos, neg = _ring(modes=6)
    space = oc.make_steerer("odesteer", **FAST)._space()
    pruned = selection.select_barrier(pos, neg, space, seed=0)
    monkeypatch.setattr(selection, "EARLY_STOP_MARGIN", (math.inf, math.inf))
    full = selection.select_barrier(pos, neg, space, seed=0)
    assert pruned.chosen == full.chosen
    assert pruned.log_loss == pytest.approx(full.log_loss, abs=1e-6)
    stopped = [
        a
        for a, b in zip(pruned.candidates, full.candidates)
        if a["cv_log_loss"] != b["cv_log_loss"]
    ]
    assert stopped  # some hopeless candidates did stop early, none of them the winner's
    best = min(c["cv_log_loss"] for c in pruned.candidates)
    assert all(c["cv_log_loss"] > best and c["folds"] == 1 for c in stopped)


def test_a_report_written_before_normalize_was_searched_still_loads(tmp_path):
    s = oc.make_steerer("odesteer", **FAST).fit(*_ring(modes=4, n=120))
    data = s.report_.to_dict()
    for settings in [data["chosen"]] + [c["settings"] for c in data["candidates"]]:
        del settings["normalize"]
    old = CalibrationReport.from_dict(data)
    assert "normalize" not in old.chosen
    with pytest.raises(ValueError, match="chosen"):
        CalibrationReport.from_dict(dict(data, chosen=dict(data["chosen"], normalize="yes")))


def test_selection_is_deterministic_with_the_seed():
    pos, neg = _ring(modes=4, n=150)
    a = oc.make_steerer("odesteer", seed=3, **FAST).fit(pos, neg)
    b = oc.make_steerer("odesteer", seed=3, **FAST).fit(pos, neg)
    assert a.report_.to_dict() == b.report_.to_dict()
    x = neg[:5]
    assert torch.equal(a.steer(x, 1.0), b.steer(x, 1.0))


def test_explicit_settings_are_respected_and_not_searched():
    pos, neg = _linear()
    s = oc.make_steerer("odesteer", degree=3, C=0.5, **FAST).fit(pos, neg)
    chosen = s.report_.chosen
    assert chosen["features"] == "tensor_sketch" and chosen["degree"] == 3 and chosen["C"] == 0.5
    assert s.report_.searched == ["gamma", "center", "normalize"]
    assert {c["settings"]["degree"] for c in s.report_.candidates} == {3}
    assert s.barrier_.feature_map.degree == 3 and s.barrier_.C == 0.5
    assert s.get_params()["select"] == "gamma,center,normalize"
    fixed = oc.make_steerer("odesteer", normalize=True, **FAST).fit(pos, neg)
    assert "normalize" not in fixed.report_.searched
    assert {c["settings"]["normalize"] for c in fixed.report_.candidates} == {True}


def test_select_false_uses_the_fixed_defaults():
    s = oc.make_steerer("odesteer", select=False, **FAST).fit(*_linear())
    assert s.report_.searched == [] and len(s.report_.candidates) == 1
    assert s.report_.chosen == {
        "features": "tensor_sketch",
        "degree": 2,
        "gamma": 1.0,
        "center": True,
        "normalize": True,
        "C": 1.0,
        "n_components": 256,
    }
    assert "fixed tensor_sketch degree 2" in s.report_.summary()


def test_paper_method_keeps_the_paper_settings():
    s = oc.make_steerer("odesteer_paper", **FAST).fit(*_linear())
    assert s.report_.searched == []
    assert s.report_.chosen["gamma"] == 0.1 and s.report_.chosen["center"] is False


def test_tiny_data_falls_back_to_fewer_folds_with_a_note():
    pos, neg = _linear(n=3)
    s = oc.make_steerer("odesteer", **FAST).fit(pos, neg)
    assert s.report_.n_folds == 3
    assert any("3-fold instead of 5-fold" in note for note in s.report_.notes)
    with pytest.raises(ValueError, match="at least 2"):
        oc.make_steerer("odesteer").fit(pos[:1], neg)


@pytest.mark.parametrize("n", [2, 3, 19])
def test_too_few_examples_for_the_flow_check_skip_it_and_say_so(n):
    report = oc.make_steerer("odesteer", **FAST).fit(*_linear(n=n)).report_
    assert report.n_folds == min(n, 5)
    assert not any("landing" in c for c in report.candidates)
    skipped = [note for note in report.notes if note.startswith("no flow check")]
    assert skipped == [
        f"no flow check: it needs 20 examples of each class, the smaller class has {n}"
    ]
    assert "(no flow check: it needs 20 examples" in quality_line(report, 2)  # shown in the app


def test_chance_level_data_warns():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(60, 8, generator=g), torch.randn(60, 8, generator=g)
    report = oc.make_steerer("odesteer", **FAST).fit(pos, neg).report_
    assert report.warning and "chance" in report.warning
    assert "WARNING" in report.summary()


def test_calibration_of_a_well_specified_model_is_good():
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(20000, generator=g)
    labels = (torch.rand(20000, generator=g) < torch.sigmoid(logits)).float()
    m = calibration_metrics(logits, labels)
    assert m["ece"] < 0.02
    assert sum(m["bin_count"]) == 20000
    assert m["log_loss"] < math.log(2)
    bad = calibration_metrics(4 * logits, labels)  # overconfident
    assert bad["ece"] > 0.05


def test_held_out_numbers_on_planted_logistic_data():
    g = torch.Generator().manual_seed(1)
    d = 10
    x = torch.randn(600, d, generator=g)
    y = torch.rand(600, generator=g) < torch.sigmoid(2 * x[:, 0])
    s = oc.make_steerer("iti").fit(x[y], x[~y])
    assert s.report_.chosen["features"] == "linear"
    assert s.report_.ece < 0.08 and 0.7 < s.report_.accuracy < 0.9


def test_report_round_trips_and_is_checked(tmp_path):
    s = oc.make_steerer("odesteer", **FAST).fit(*_ring(modes=4, n=120))
    path = oc.save_steerer(s, tmp_path / "s.safetensors")
    loaded = oc.load_steerer(path)
    assert loaded.report_ == s.report_
    assert loaded.report_.summary() == s.report_.summary()
    x = _ring(modes=4, seed=5)[1][:4]
    assert torch.equal(loaded.steer(x, 1.0), s.steer(x, 1.0))
    assert CalibrationReport.from_dict(s.report_.to_dict()) == s.report_
    bad = dict(s.report_.to_dict(), ece=2.0)
    with pytest.raises(ValueError, match="ece"):
        CalibrationReport.from_dict(bad)
    with pytest.raises(ValueError, match="unexpected"):
        CalibrationReport.from_dict(dict(s.report_.to_dict(), extra=1))

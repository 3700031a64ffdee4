"""The flow check (``method/landing.py``) and how selection uses it (``method/selection.py``)."""

import math

import pytest
import torch

import odesteer_core as oc
from odesteer_core.method import landing, selection
from odesteer_core.method.calibration import CalibrationReport
from odesteer_core.method.landing import (
    Cloud,
    Landing,
    clearly_better,
    landing_hits,
    landing_shares,
)
from odesteer_core.view.calibration_plot import quality_line


def _blobs(n=200, d=6, seed=0, gap=4.0):
    g = torch.Generator().manual_seed(seed)
    shift = torch.zeros(d)
    shift[0] = gap / 2
    return torch.randn(n, d, generator=g) + shift, torch.randn(n, d, generator=g) - shift


def _cloud(seed=0):
    pos, neg = _blobs(seed=seed)
    pos_val = _blobs(seed=seed + 100)[0]
    return Cloud.build(pos, neg, pos_val, torch.Generator().manual_seed(0)), pos, neg


def test_cloud_judges_planted_points():
    cloud, pos, neg = _cloud()
    fresh_pos, fresh_neg = _blobs(seed=7)
    assert float(cloud.inside(fresh_pos).float().mean()) > 0.85  # ~95 % typical, ~98 % Bayes
    assert float(cloud.inside(fresh_neg).float().mean()) < 0.05
    centre = pos.mean(0, keepdim=True)
    assert bool(cloud.inside(centre)) and not bool(cloud.inside(centre + 50.0))  # too far out


def test_landing_hits_follow_the_field():
    cloud, pos, _ = _cloud()
    start = _blobs(seed=9)[1][:50]
    target = pos.mean(0)
    towards = lambda x: (target - x) / (target - x).norm(dim=1, keepdim=True)  # noqa: E731
    hits, still = landing_hits([towards, torch.zeros_like], start, cloud, dt=0.25)
    assert hits.shape == still.shape == (landing.LANDING_STEPS + 1, 50)
    counts = hits.sum(1)
    assert counts[0] <= 3 and counts.max() >= 45  # the planted field brings them in
    assert torch.equal(still, still[:1].expand_as(still))  # no field: no change
    alone = landing_hits([towards], start, cloud, dt=0.25)[0]
    assert torch.equal(alone, hits)  # fields flowing together do not interact


def _landing(hits):
    hits = torch.tensor(hits, dtype=torch.bool)
    return Landing(float(hits.float().mean()), 1.0, hits)


def test_clearly_better_is_a_paired_test():
    base = [True] * 50 + [False] * 10
    five_more = _landing([True] * 55 + [False] * 5)  # the same 50 rows, and 5 more
    assert clearly_better(five_more, _landing(base))  # 5 of 5 discordant rows: significant
    assert not clearly_better(_landing(base), five_more)
    # the same two shares from different rows: 5 more as 10 gained and 5 lost, within noise
    scattered = _landing([True] * 5 + [False] * 5 + [True] * 50)
    assert scattered.share == five_more.share
    assert not clearly_better(scattered, _landing(base))
    # a significant but small difference (2 of 60 rows, all one way) is not enough
    assert not clearly_better(_landing([True] * 52 + [False] * 8), _landing(base))
    assert not clearly_better(_landing(base), _landing(base))


def _shell(d=16, n=400, seed=0):
    """Positives at the centre, negatives on a ring of radius 3 in the first plane (the synthetic
    benchmark's "nested" layout): a polynomial barrier's flow drifts outwards once centred."""
    g = torch.Generator().manual_seed(seed)
    pos = 0.5 * torch.randn(n, d, generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    neg = 0.5 * torch.randn(n, d, generator=g)
    neg[:, 0] += 3 * torch.cos(angle)
    neg[:, 1] += 3 * torch.sin(angle)
    return pos, neg


def test_landing_shares_rank_a_field_that_reaches_above_one_that_cannot():
    pos, neg = _shell(n=200)
    X, y = torch.cat([pos, neg]), torch.cat([torch.ones(200), torch.zeros(200)])
    fold = torch.arange(400) % 4
    common = {"center": True, "normalize": False, "C": 10.0, "degree": None}
    rbf = {"features": "random_fourier", "gamma": 1.0, "n_components": 512, **common}
    flat = {"features": "linear", "gamma": None, "n_components": None, **common}
    got = landing_shares(X, y, fold, [0, 1], {"rbf": rbf, "linear": flat}, 1.0, seed=0)
    assert got["rbf"].share > 0.8 and got["rbf"].distance > 0  # reached after moving
    assert got["linear"].share < 0.5  # a straight line through a ring misses most of its centre
    assert got["rbf"].hits.shape == (100,)  # both folds' negatives, pooled
    assert got["rbf"].share == pytest.approx(float(got["rbf"].hits.float().mean()))
    assert clearly_better(got["rbf"], got["linear"])


def test_selection_records_landing_and_never_keeps_a_clearly_worse_flow():
    pos, neg = _shell()
    s = oc.make_steerer("odesteer", n_components=512).fit(pos, neg)
    report = s.report_
    contenders = [c for c in report.candidates if "landing" in c]
    assert len(contenders) >= 2
    best = max(c["landing"] for c in contenders)
    chosen = [c for c in contenders if c["settings"] == report.chosen]
    assert chosen, "the winner is one of the flow check's contenders"
    # kept unless clearly worse: a difference beyond max(MIN_GAP, 2 / sqrt(n)) always is
    assert chosen[0]["landing"] >= best - max(landing.MIN_GAP, 2 / math.sqrt(60))
    assert CalibrationReport.from_dict(report.to_dict()) == report  # 'landing' saved and loaded


def test_the_flow_check_changes_the_choice_when_the_simplest_flow_drifts(monkeypatch):
    pos, neg = _shell(d=24)  # at d = 16 degree 2 still lands: no switch
    space = oc.make_steerer("odesteer", n_components=512)._space()
    with_check = selection.select_barrier(pos, neg, space, seed=0)
    monkeypatch.setattr(selection, "landing_shares", _no_check)
    without = selection.select_barrier(pos, neg, space, seed=0)
    assert with_check.chosen != without.chosen
    assert any(note.startswith("flow check:") for note in with_check.notes)
    assert not any(note.startswith("flow check:") for note in without.notes)
    assert "(flow check: " in quality_line(with_check, 3)  # the app says why
    assert "flow check" not in quality_line(without, 3)
    # the switch pays: the chosen barrier's flow brings more fresh negatives inside the
    # positives' 95 % ball (|x|^2 <= 0.25 chi2_24(0.95) = 9.10) at its best distance
    fresh = _shell(d=24, seed=1)[1][:200]

    def best_share(chosen):
        fixed = {k: v for k, v in chosen.items() if v is not None}
        s = oc.make_steerer("odesteer", **fixed).fit(pos, neg)
        shares = []
        for dist in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0):
            moved = s.steer(fresh, dist / s.speed_)
            shares.append(float((moved.pow(2).sum(1) <= 9.10).float().mean()))
        return max(shares)

    assert best_share(with_check.chosen) >= best_share(without.chosen) + 0.05


def _no_check(X, y, fold, folds, settings, *args):
    return {key: Landing(1.0, 0.0, torch.ones(10, dtype=torch.bool)) for key in settings}


def test_a_candidate_with_a_bad_landing_value_is_refused():
    s = oc.make_steerer("odesteer", n_components=256).fit(*_blobs(n=60))
    data = s.report_.to_dict()
    data["candidates"][0]["landing"] = 1.5
    with pytest.raises(ValueError, match="candidates"):
        CalibrationReport.from_dict(data)
    data["candidates"][0]["landing"] = 0.5
    data["candidates"][0]["extra"] = 1
    with pytest.raises(ValueError, match="candidates"):
        CalibrationReport.from_dict(data)

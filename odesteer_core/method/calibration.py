"""How good is a fitted barrier: held-out accuracy, log-loss and calibration, as a report.

Every barrier steerer carries a ``CalibrationReport`` (``steerer.report_``) computed from the
out-of-fold predictions of cross-validation (``selection.py``): each activation is scored by the
model fitted on the folds that do not contain it. The report also records which settings were
chosen, every candidate's CV score, the number of folds and notes, and warns when the barrier is
barely better than chance. It is saved with the steerer (JSON metadata, checked on load by
``from_dict``) and shown by the CLI and the app (``summary()``).

Calibration is of ``P(positive | a) = sigmoid(logit)`` with the training share of positives as
the prior (for balanced classes, ``sigmoid(h)``). Reliability: 10 equal-width bins of the
predicted probability; per bin the mean prediction ("confidence"), the share of positives
("accuracy") and the count; ECE is the count-weighted mean of ``|accuracy - confidence|``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch

__all__ = ["CalibrationReport", "calibration_metrics"]

N_BINS = 10
CHANCE_ACCURACY = 0.6  # below this held-out accuracy the report warns
CHANCE_LOG_LOSS = 0.95 * math.log(2)  # at or above this held-out log-loss the report warns


def calibration_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy, log-loss, ECE and reliability-diagram bins of out-of-fold ``logits`` (n,)."""
    logits, y = logits.double().cpu(), labels.double().cpu()
    p = torch.sigmoid(logits)
    log_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y))
    accuracy = float(((logits > 0).double() == y).double().mean())
    which = (p * N_BINS).long().clamp_(0, N_BINS - 1)
    counts = torch.bincount(which, minlength=N_BINS).double()
    conf = torch.zeros(N_BINS, dtype=torch.float64).index_add_(0, which, p)
    pos = torch.zeros(N_BINS, dtype=torch.float64).index_add_(0, which, y)
    safe = counts.clamp_min(1)
    conf, acc = conf / safe, pos / safe
    ece = float(((acc - conf).abs() * counts).sum() / counts.sum())
    return {
        "accuracy": accuracy,
        "log_loss": log_loss,
        "ece": ece,
        "bin_confidence": [round(float(v), 6) for v in conf],
        "bin_accuracy": [round(float(v), 6) for v in acc],
        "bin_count": [int(v) for v in counts],
    }


def chance_warning(accuracy: float, log_loss: float) -> str:
    if accuracy < CHANCE_ACCURACY or log_loss >= CHANCE_LOG_LOSS:
        return (
            f"the barrier is barely better than chance on held-out activations (accuracy "
            f"{accuracy:.2f}, log-loss {log_loss:.2f} vs {math.log(2):.2f} for a coin): the "
            "concept's examples may not separate at this layer; steering follows noise"
        )
    return ""


def describe(settings: dict, *, with_C: bool = True) -> str:
    """``tensor_sketch degree 2, gamma 1, C 1`` / ``linear, C 0.1`` (centring named when off);
    ``with_C=False`` names the feature set only."""
    parts = [str(settings["features"])]
    if settings["features"] == "tensor_sketch":
        parts[0] += f" degree {settings['degree']}"
    if settings.get("gamma") is not None and settings["features"] != "linear":
        parts.append(f"gamma {settings['gamma']:g}")
    if not settings.get("center", True):
        parts.append("uncentred")
    if not settings.get("normalize", True):
        parts.append("not normalised")
    if with_C:
        parts.append(f"C {settings['C']:.3g}")
    return ", ".join(parts)


@dataclass
class CalibrationReport:
    """Held-out quality of a fitted barrier (out-of-fold predictions of cross-validation).

    Attributes:
        accuracy, log_loss, ece: held-out accuracy (sign of the logit), mean log-loss, and the
            expected calibration error over ``N_BINS`` bins.
        bin_confidence, bin_accuracy, bin_count: the reliability diagram (empty bins: 0, 0, 0).
        chosen: the barrier settings used (``features``, ``degree``, ``gamma``, ``center``, ``C``,
            ``n_components``); ``searched`` names the ones cross-validation chose.
        candidates: each candidate's settings, mean CV log-loss and folds it was scored on (1 when
            the first fold already ruled it out); the flow check's contenders also carry
            ``landing``, the share of held-out negatives their flow brought into the positive
            cloud (``landing.py``).
        n_folds, n_rows: folds, and rows (both classes) the held-out numbers come from.
        notes: what the fit had to adapt (fewer folds, a subsample); ``warning``: non-empty when
            the barrier is barely better than chance.
    """

    accuracy: float
    log_loss: float
    ece: float
    bin_confidence: list[float]
    bin_accuracy: list[float]
    bin_count: list[int]
    chosen: dict
    searched: list[str] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    n_folds: int = 0
    n_rows: int = 0
    notes: list[str] = field(default_factory=list)
    warning: str = ""

    def summary(self) -> str:
        how = "chose" if self.searched else "fixed"
        line = (
            f"held-out accuracy {self.accuracy:.2f}, log-loss {self.log_loss:.2f}, ECE "
            f"{self.ece:.2f} ({self.n_folds}-fold; {how} {describe(self.chosen)})"
        )
        return f"{line}; WARNING: {self.warning}" if self.warning else line

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> CalibrationReport:
        """The report a JSON object describes, every field checked; ``ValueError`` otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"'report' must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        extra, missing = sorted(set(data) - set(names)), sorted(set(names) - set(data))
        if extra or missing:
            raise ValueError(f"report keys: unexpected {extra}, missing {missing}")
        for name in ("accuracy", "ece"):
            _check(data[name], _is_fraction, f"report {name!r} must be a number in [0, 1]")
        _check(data["log_loss"], _is_nonnegative, "report 'log_loss' must be a number >= 0")
        for name in ("bin_confidence", "bin_accuracy"):
            ok = _is_list(data[name], _is_fraction, N_BINS)
            _check(ok, bool, f"report {name!r} must be {N_BINS} numbers in [0, 1]")
        ok = _is_list(data["bin_count"], _is_count, N_BINS)
        _check(ok, bool, f"report 'bin_count' must be {N_BINS} integers >= 0")
        _check(data["chosen"], _is_settings, "report 'chosen' must be barrier settings")
        ok = _is_list(data["searched"], lambda v: v in SETTING_KINDS)
        _check(ok, bool, f"report 'searched' must list names among {sorted(SETTING_KINDS)}")
        ok = _is_list(data["candidates"], _is_candidate)
        _check(ok, bool, "report 'candidates' must be a list of settings with scores")
        for name in ("n_folds", "n_rows"):
            _check(data[name], _is_count, f"report {name!r} must be an integer >= 0")
        _check(_is_list(data["notes"], _is_str), bool, "report 'notes' must be a list of strings")
        _check(data["warning"], _is_str, "report 'warning' must be a string")
        return cls(**{k: data[k] for k in names})


def _check(value: object, test, message: str) -> None:
    if not test(value):
        raise ValueError(f"{message}, got {value!r}"[:300])


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_fraction(v: object) -> bool:
    return _is_real(v) and 0 <= v <= 1


def _is_nonnegative(v: object) -> bool:
    return _is_real(v) and v >= 0


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_str(v: object) -> bool:
    return isinstance(v, str) and len(v) <= 2000


def _is_list(v: object, test, length: int | None = None) -> bool:
    return (
        isinstance(v, list)
        and (length is None or len(v) == length)
        and len(v) <= 1000
        and all(test(x) for x in v)
    )


SETTING_KINDS = {  # name -> test of its JSON value
    "features": lambda v: v in ("tensor_sketch", "random_fourier", "linear"),
    "degree": lambda v: v is None or (_is_count(v) and 1 <= v <= 16),
    "gamma": lambda v: v is None or (_is_real(v) and v > 0),
    "center": lambda v: isinstance(v, bool),
    "normalize": lambda v: isinstance(v, bool),
    "C": lambda v: _is_real(v) and v > 0,
    "n_components": lambda v: v is None or (_is_count(v) and v >= 1),
}


def _is_settings(v: object) -> bool:
    """Every setting present and valid; ``normalize`` may be absent (reports written before it
    was searched: the steerer's own ``normalize`` then applies)."""
    return (
        isinstance(v, dict)
        and set(SETTING_KINDS) - {"normalize"} <= set(v) <= set(SETTING_KINDS)
        and all(test(v[k]) for k, test in SETTING_KINDS.items() if k in v)
    )


def _is_candidate(v: object) -> bool:
    """Settings, CV log-loss, folds, and ``landing`` for the flow check's contenders."""
    keys = {"settings", "cv_log_loss", "folds"}
    if not isinstance(v, dict) or not keys <= set(v) <= keys | {"landing"}:
        return False
    return (
        _is_settings(v["settings"])
        and _is_nonnegative(v["cv_log_loss"])
        and _is_count(v["folds"])
        and _is_fraction(v.get("landing", 0.0))
    )

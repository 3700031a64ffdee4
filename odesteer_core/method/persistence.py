"""Save and load fitted steerers: one safetensors file, metadata as JSON in its header.

Never pickle: a steerer file holds tensors plus a JSON object naming the method, its
hyper-parameters and its fitted scalars, so loading one cannot run code. Nor is a file trusted:
``load_steerer`` accepts only the metadata keys below, the method's own hyper-parameters with
their JSON types, and exactly the fitted scalars and tensors that the method's ``state_spec``
declares (names, kinds, shapes consistent with the width ``d_``, finite values); anything else is
a ``ValueError`` naming the file and the problem. Barrier steerers also save their calibration
report (``"report"``, checked by ``CalibrationReport.from_dict``): it names the settings that
cross-validation chose, which the barrier's state is rebuilt with.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from odesteer_core.method.base import Steerer
from odesteer_core.method.registry import STEERERS

__all__ = ["load_steerer", "save_steerer"]

FORMAT = "odesteer-steerer"
VERSION = 1
META_KEYS = ("format", "version", "method", "params", "fitted")
OPTIONAL_META_KEYS = ("report",)


def save_steerer(steerer: Steerer, path: str | Path) -> Path:
    """Write a fitted steerer to ``path`` (conventionally ``*.safetensors``)."""
    if not isinstance(steerer, Steerer):
        raise TypeError(f"expected a Steerer, got {type(steerer).__name__}")
    tensors, scalars = steerer.fitted_state()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "method": steerer.name,
        "params": steerer.get_params(),
        "fitted": scalars,
    }
    report = getattr(steerer, "report_", None)
    if report is not None:
        meta["report"] = report.to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(cpu, str(tmp), metadata={"odesteer": json.dumps(meta)})
    tmp.replace(path)  # atomic: a crash never leaves a half-written steerer behind
    return path


def load_steerer(path: str | Path, *, device: str | torch.device = "cpu") -> Steerer:
    """Read a steerer written by ``save_steerer``; raises ``ValueError`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no steerer file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            # clone: fresh, aligned memory, so results are bit-identical to the saved steerer's
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None
    try:
        meta = json.loads(header["odesteer"])
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise KeyError("format")
    except (KeyError, TypeError, ValueError, RecursionError):
        raise ValueError(
            f"{path} is a safetensors file but not an ODESteer Studio steerer "
            "(no 'odesteer' metadata); save one with oc.save_steerer"
        ) from None
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} has steerer format version {meta.get('version')}; need {VERSION}")
    try:
        steerer = _check_and_build(header, meta, tensors)
        steerer.to(device)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None
    return steerer


# -- checks of an untrusted file ----------------------------------------------------------------
def _check_and_build(header: dict, meta: dict, tensors: dict[str, torch.Tensor]) -> Steerer:
    """The steerer a file describes, every part checked first; ``ValueError`` on the first problem."""
    optional = set(meta) & set(OPTIONAL_META_KEYS)
    _check_names("metadata key", set(meta) - optional, META_KEYS)
    _check_names("safetensors header key", set(header), ("odesteer",))
    method, params, fitted = meta["method"], meta["params"], meta["fitted"]
    if not isinstance(method, str) or method not in STEERERS:
        raise ValueError(f"unknown method {method!r}; valid: {sorted(STEERERS)}")
    steerer = _unfitted(STEERERS[method], params)
    if not isinstance(fitted, dict):
        raise ValueError(f"'fitted' must be a JSON object, got {type(fitted).__name__}")
    if hasattr(steerer, "load_report"):  # before state_spec: the chosen settings shape it
        steerer.load_report(meta.get("report"))
    elif "report" in meta:
        raise ValueError(f"unexpected metadata key 'report': {method} has no barrier")
    d = _scalar("d_", fitted.get("d_"), "width", {})
    tensor_spec, scalar_spec, dims = steerer.state_spec(d)
    _check_names("fitted scalar", set(fitted), scalar_spec)
    scalars = {k: _scalar(k, fitted[k], kind, dims) for k, kind in scalar_spec.items()}
    _check_names("tensor", set(tensors), tensor_spec)
    checked = {k: _tensor(k, tensors[k], *spec, dims) for k, spec in tensor_spec.items()}
    steerer.load_fitted_state(checked, scalars)
    return steerer


def _check_names(noun: str, got: set[str], expected) -> None:
    """``got`` must be exactly the names ``expected``."""
    extra, missing = sorted(got - set(expected)), sorted(set(expected) - got)
    if extra or missing:
        parts = [f"unexpected {noun} {k!r}" for k in extra]
        parts += [f"missing {noun} {k!r}" for k in missing]
        valid = ", ".join(repr(k) for k in expected) or "none"
        raise ValueError(f"{'; '.join(parts)} (expected exactly: {valid})")


def _unfitted(cls: type[Steerer], params: object) -> Steerer:
    """``cls(**params)``, ``params`` checked against a default instance's ``get_params()``: its
    keys only (missing ones keep their defaults), each of the default's JSON type (or null where
    annotated so), and values the constructor keeps as they are."""
    if not isinstance(params, dict):
        raise ValueError(f"'params' must be a JSON object, got {type(params).__name__}")
    default = cls()
    defaults, nullable = default.get_params(), _nullable(default)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown param(s) {', '.join(map(repr, unknown))} for {cls.name} "
            f"(its hyper-parameters: {', '.join(defaults)})"
        )
    for key, value in params.items():
        if value is None and key in nullable:
            continue
        if not _same_json_type(value, defaults[key]):
            raise ValueError(
                f"param {key!r} must be {_json_type(defaults[key])}, got {_json_type(value)} "
                f"{value!r}"[:200]
            )
    steerer = cls(**params)  # the constructor checks the values themselves
    made = steerer.get_params()
    for key, value in params.items():
        if made[key] != value:  # a saved file holds what get_params() returned
            raise ValueError(f"param {key!r} = {value!r} is not a value {cls.name} keeps")
    return steerer


def _nullable(steerer: Steerer) -> set[str]:
    """Hyper-parameters annotated as possibly None, in ``__init__`` or an options dataclass."""
    hints = {
        name: str(p.annotation)
        for name, p in inspect.signature(type(steerer).__init__).parameters.items()
    }
    options = getattr(steerer, "options", None)
    if dataclasses.is_dataclass(options):
        hints.update({f.name: str(f.type) for f in dataclasses.fields(options)})
    return {name for name, hint in hints.items() if "None" in hint}


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else f"a JSON {type(value).__name__}"


def _same_json_type(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):  # a JSON number: 1 and 1.0 alike, never NaN or inf
        return isinstance(value, (int, float)) and math.isfinite(value)
    return type(value) is type(default) and type(default) in (int, str)


_SCALAR_KINDS = {  # kind -> (test, what it must be)
    "width": (lambda v, dims: _is_int(v) and v >= 1, "an integer >= 1"),
    "count": (lambda v, dims: _is_int(v) and v >= 0, "an integer >= 0"),
    "d": (lambda v, dims: _is_int(v) and v == dims["d"], "the width d_ = {d}"),
    "real": (lambda v, dims: _is_real(v), "a finite number"),
    "nonnegative": (lambda v, dims: _is_real(v) and v >= 0, "a finite number >= 0"),
    "positive": (lambda v, dims: _is_real(v) and v > 0, "a finite number > 0"),
    "fraction": (lambda v, dims: _is_real(v) and 0 <= v <= 1, "a number in [0, 1]"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scalar(name: str, value: object, kind: str, dims: dict[str, int]) -> int | float:
    test, must = _SCALAR_KINDS[kind]
    if not test(value, dims):
        must = must.format(**dims)
        raise ValueError(f"fitted scalar {name!r} must be {must}, got {value!r}"[:200])
    return value if kind in ("width", "count", "d") else float(value)


def _tensor(
    name: str, t: torch.Tensor, shape: tuple[str, ...], kind: str, dims: dict[str, int]
) -> torch.Tensor:
    """One tensor checked against its spec: dtype, shape from ``dims``, finite or in range."""
    expected = tuple(dims[s] for s in shape)
    integer = kind == "index"
    if integer and (t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool):
        raise ValueError(f"tensor {name!r} has dtype {t.dtype}, expected an integer dtype")
    if not integer and not t.dtype.is_floating_point:
        raise ValueError(f"tensor {name!r} has dtype {t.dtype}, expected a floating dtype")
    if tuple(t.shape) != expected:
        raise ValueError(f"tensor {name!r} has shape {tuple(t.shape)}, expected {expected}")
    if integer:
        if t.numel() and not bool(((t >= 0) & (t < dims["D"])).all()):
            raise ValueError(f"tensor {name!r} has indices outside [0, {dims['D']})")
        return t.long()
    t = t.float()  # the steerers' working dtype
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"tensor {name!r} has non-finite values (NaN or inf)")
    if kind == "sign" and not bool((t.abs() == 1).all()):
        raise ValueError(f"tensor {name!r} must hold only +1 and -1")
    return t

"""Which layer to steer: the concept's barrier fitted at several layers, with its held-out quality.

One extraction pass records every layer asked for (``lm.activations.extract_layers``); at each
layer the default ODESteer barrier is fitted and its calibration report (``method/calibration.py``:
cross-validated accuracy, log-loss, ECE) says how well the concept separates there. A layer where
the barrier is barely better than chance is a poor place to steer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from odesteer_core.concepts.concept import Concept
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.method.calibration import describe
from odesteer_core.method.registry import make_steerer
from odesteer_core.pipeline.fit import concept_activations

__all__ = ["LayerSweep", "parse_layers", "spread_layers", "sweep_layers"]


@dataclass
class LayerSweep:
    """Per layer: the held-out numbers of the ODESteer barrier fitted there."""

    model_name: str
    concept: str
    rows: list[dict] = field(default_factory=list)  # layer, accuracy, log_loss, ece, summary...
    timing: dict = field(default_factory=dict)

    def best(self) -> int:
        """The layer with the lowest held-out log-loss."""
        return min(self.rows, key=lambda r: r["log_loss"])["layer"]

    def table(self) -> str:
        """A markdown table, one row per layer, the best in bold."""
        best = self.best()
        lines = [
            "| layer | held-out accuracy | log-loss | ECE | chosen barrier |",
            "|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            mark = "**" if r["layer"] == best else ""
            lines.append(
                f"| {mark}{r['layer']}{mark} | {r['accuracy']:.3f} | {r['log_loss']:.3f} | "
                f"{r['ece']:.3f} | {r['chosen']}{' (⚠️ near chance)' if r['warning'] else ''} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "concept": self.concept,
            "rows": self.rows,
            "best": self.best(),
            "timing": self.timing,
        }


def spread_layers(n_layers: int, default: int, most: int) -> list[int]:
    """Every layer of a model of at most ``most`` layers; else ``most`` layers evenly spread
    from the first to the last, plus ``default`` (so at most ``most + 1``)."""
    if n_layers <= most:
        return list(range(n_layers))
    spread = {round(i * (n_layers - 1) / (most - 1)) for i in range(most)}
    return sorted(spread | {default})


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """``"all"`` or comma-separated 0-based layer indices (``"4,8,12"``), checked."""
    text = spec.strip().lower()
    if text == "all":
        return list(range(n_layers))
    try:
        layers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(
            f"--layers must be 'all' or whole numbers like 4,8,12, got {spec!r}"
        ) from None
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if not layers or bad:
        raise ValueError(f"--layers must name layers 0-{n_layers - 1} of this model, got {spec!r}")
    return layers


def sweep_layers(
    lm: LoadedLM,
    concept: Concept,
    layers: list[int],
    *,
    seed: int = 0,
    progress: bool = True,
    cache_dir: str | None = None,
) -> LayerSweep:
    """Fit the concept's default ODESteer barrier at each of ``layers``; report each one.

    Activations of every layer come from one extraction pass (cached per layer).
    """
    t0 = time.perf_counter()
    acts = concept_activations(lm, concept, layers, progress, cache_dir)
    sweep = LayerSweep(lm.name, concept.name, timing={"extract_s": time.perf_counter() - t0})
    t1 = time.perf_counter()
    for layer, (pos, neg) in acts.items():
        steerer = make_steerer("odesteer", seed=seed).fit(pos, neg)
        report = steerer.report_
        sweep.rows.append(
            {
                "layer": layer,
                "accuracy": report.accuracy,
                "log_loss": report.log_loss,
                "ece": report.ece,
                "chosen": describe(report.chosen),
                "warning": report.warning,
                "report": report.to_dict(),
            }
        )
    sweep.timing["fit_s"] = time.perf_counter() - t1
    return sweep

"""From stored cells to the paper's tables: ``results.json`` rows and the Markdown
tables.

Metrics (the paper's evaluation, as its authors' code computes them): True*Info is the mean of the per-item AND of the two judges' labels
(items where either judge failed are left out), True and Info the means of each; RM mean, the RM
90th percentile and the win rate against the unsteered arm (prompts matched after whitespace
normalisation, a tie counts one half, the unsteered arm is 0.5 by definition); toxicity the mean
over the scored continuations; perplexity the mean over texts that have one; distinct-n the mean
of each text's own distinct-n (per output, then averaged, as the paper). A NaN is skipped and
counted in the row's ``nan``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from odesteer_core.evaluation.reproduce.tasks import TASKS

__all__ = ["CellResult", "cell_metrics", "markdown_tables", "result_rows"]


@dataclass
class CellResult:
    """A finished cell: its generations (or MC rows) and each judge's per-item scores."""

    task: str
    method: str
    setting: tuple[str, float] | None
    rows: list[dict]
    scores: dict[str, list[float]] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> tuple[float, int]:
    """Mean of the finite values, and how many were not finite."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return (sum(finite) / len(finite) if finite else math.nan), len(values) - len(finite)


def _normalised(prompt: str) -> str:
    return " ".join(prompt.split())


def _win_rate(cell: CellResult, baseline: CellResult | None) -> tuple[float, int]:
    if cell.method == "none":
        return 0.5, 0
    if baseline is None or "reward" not in baseline.scores:
        return math.nan, 0
    base = {_normalised(r["prompt"]): s for r, s in zip(baseline.rows, baseline.scores["reward"])}
    wins, skipped = [], 0
    for row, score in zip(cell.rows, cell.scores["reward"]):
        other = base.get(_normalised(row["prompt"]), math.nan)
        if not (math.isfinite(score) and math.isfinite(other)):
            skipped += 1
            continue
        wins.append(1.0 if score > other else 0.5 if score == other else 0.0)
    return (sum(wins) / len(wins) if wins else math.nan), skipped


def cell_metrics(cell: CellResult, baseline: CellResult | None) -> dict[str, tuple[float, int]]:
    """``{metric: (value, NaN count)}`` of one cell (``baseline``: the task's unsteered cell)."""
    if cell.task == "truthfulqa-mc":
        return {m: _mean([r[m] for r in cell.rows]) for m in ("mc1", "mc2", "mc3")}
    out = {f"distinct_{n}": _mean([r[f"distinct_{n}"] for r in cell.rows]) for n in (1, 2, 3)}
    scores = cell.scores
    if "perplexity" in scores:
        out["perplexity"] = _mean(scores["perplexity"])
    if "truth" in scores and "info" in scores:
        both = [t * i for t, i in zip(scores["truth"], scores["info"])]  # NaN stays NaN
        out.update(true_info=_mean(both), true=_mean(scores["truth"]), info=_mean(scores["info"]))
    if "reward" in scores:
        finite = [s for s in scores["reward"] if math.isfinite(s)]
        p90 = float(np.percentile(finite, 90)) if finite else math.nan
        out.update(
            rm_mean=_mean(scores["reward"]), rm_p90=(p90, len(scores["reward"]) - len(finite))
        )
        out["rm_win_rate"] = _win_rate(cell, baseline)
    if "toxicity" in scores:
        out["toxicity"] = _mean(scores["toxicity"])
    return out


def result_rows(cells: list[CellResult], settings: dict) -> list[dict]:
    """One ``results.json`` row per cell and metric, with the run's settings."""
    baselines = {c.task: c for c in cells if c.method == "none"}
    rows = []
    for cell in cells:
        for metric, (value, nan) in cell_metrics(cell, baselines.get(cell.task)).items():
            row = {"task": cell.task, "method": cell.method, "metric": metric}
            row["value"] = value if math.isfinite(value) else None
            row.update(n=len(cell.rows), nan=nan, failed=sum(cell.failed.values()))
            if cell.setting is not None:
                row[cell.setting[0]] = cell.setting[1]
            rows.append({**row, **settings})
    return rows


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if metric == "perplexity" else f"{value:.3f}"


def _table(task: str, rows: list[dict], methods: list[str]) -> list[str]:
    metrics = [(m, d) for m, d in TASKS[task].metrics if any(r["metric"] == m for r in rows)]
    value = {(r["method"], r["metric"]): r["value"] for r in rows}
    best = {}
    for metric, direction in metrics:
        finite = [value[(m, metric)] for m in methods if value.get((m, metric)) is not None]
        if finite:
            best[metric] = max(finite) if direction == "+" else min(finite)
    arrows = {"+": "\u2191", "-": "\u2193"}
    lines = ["| method | " + " | ".join(f"{m} {arrows[d]}" for m, d in metrics) + " |"]
    lines.append("|---" * (len(metrics) + 1) + "|")
    for method in methods:
        cells = []
        for metric, _ in metrics:
            v = value.get((method, metric))
            text = _fmt(v, metric)
            cells.append(f"**{text}**" if v is not None and v == best.get(metric) else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def markdown_tables(rows: list[dict], title: str) -> str:
    """The paper's layout: per task and sweep point, methods as rows and metrics as columns,
    the best value of each column in bold (unsteered ``none`` in every table)."""
    lines = [f"# {title}", ""]
    for task in TASKS:
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        points = sorted({(k, r[k]) for r in mine for k in ("strength", "target") if k in r})
        for kind, point in points or [(None, None)]:
            chosen = [r for r in mine if r["method"] == "none" or r.get(kind) == point]
            methods = list(dict.fromkeys(r["method"] for r in chosen))
            head = f"## {task}" + ("" if kind is None else f" ({kind} {point:g})")
            n = max((r["n"] for r in chosen), default=0)
            lines += [head, "", f"{n} items per method.", "", *_table(task, chosen, methods), ""]
    return "\n".join(lines)

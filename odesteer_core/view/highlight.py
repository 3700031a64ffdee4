"""HTML for one arm's streamed text: tokens tinted by how far the edit moved their activation.

Pure functions of an ``ArmRecord`` prefix (the first ``n`` tokens), so a stream can render while
the record keeps growing. Every token is HTML-escaped; its tooltip gives the barrier value after
the edit and the edit's size.
"""

from __future__ import annotations

import html
import math

from odesteer_core.lm.records import ArmRecord
from odesteer_core.method.target import target_level

__all__ = ["arm_html", "arm_readout", "edit_scale"]

_TINT = "99, 102, 241"  # indigo: the more the edit moved the activation, the stronger the tint


def edit_scale(records: list[ArmRecord]) -> float:
    """The largest edit of any token of any arm: the full-tint reference shared by the columns."""
    sizes = [size for record in records for size in record.edit_sizes()]
    return max(sizes, default=0.0)


def arm_html(record: ArmRecord, *, n: int | None = None, scale: float = 0.0) -> str:
    """The first ``n`` tokens of ``record`` (all if None) as tinted, escaped HTML spans.

    Args:
        record: The arm.
        n: How many tokens to show (a consistent prefix while the record grows).
        scale: Edit size drawn at full tint (``edit_scale`` of all arms); 0 draws no tint.
    """
    n = len(record.tokens) if n is None else min(n, len(record.tokens))
    if n == 0:
        return '<div class="arm-text"><span class="arm-empty">…</span></div>'
    sizes = record.edit_sizes()[:n]
    spans = []
    for i in range(n):
        size = sizes[i] if i < len(sizes) else 0.0
        alpha = min(size / scale, 1.0) * 0.55 if scale > 0 else 0.0
        h = record.barrier_after[i] if i < len(record.barrier_after) else float("nan")
        tip = f"h = {h:+.2f}" if math.isfinite(h) else "h = n/a"
        tip += f" · edit {size:.2f}" if record.name != "none" else ""
        text = html.escape(record.tokens[i]).replace("\n", "<br>")
        spans.append(
            f'<span title="{tip}" style="background: rgba({_TINT}, {alpha:.2f})">{text}</span>'
        )
    return f'<div class="arm-text">{"".join(spans)}</div>'


def arm_readout(record: ArmRecord, *, n: int | None = None) -> str:
    """Markdown: what the arm did to each token, how far that moved the activations on
    average, the mean barrier value and the share of tokens on the positive side."""
    n = len(record.barrier_after) if n is None else min(n, len(record.barrier_after))
    values = [v for v in record.barrier_after[:n] if math.isfinite(v)]
    line = _what_it_did(record)
    sizes = record.edit_sizes()[:n]
    if record.method is not None and sizes:
        line += f" · moved **{sum(sizes) / len(sizes):.2f}** per token on average"
        if record.target is not None:
            line += f" ({sum(s > 0 for s in sizes)} of {len(sizes)} tokens needed a move"
            level = target_level(record.target)
            short = sum(h < level - 1e-2 for h in record.barrier_after[:n])  # float16 records
            line += f"; {short} stopped short at the horizon)" if short else ")"
    if not values:
        return f"{line}  \nmean h: – · positive side: –"
    mean = sum(values) / len(values)
    share = sum(v > 0 for v in values) / len(values)
    return (
        f"{line}  \nmean h: **{mean:+.2f}** · positive side: **{share:.0%}** of "
        f"{len(values)} tokens"
    )


def _what_it_did(record: ArmRecord) -> str:
    if record.method is None:
        return "no edit"
    if record.target is not None:
        level = target_level(record.target)
        return f"{record.method}: each token to confidence {record.target:g} (h = {level:+.2f})"
    if record.steps > 1:
        return f"{record.method}: T = {record.T:.3g} in {record.steps} steps"
    return f"{record.method}: one step, T = {record.T:.3g}"

"""The open-model schedule over the analysis window: what run.json's ``arrival`` block counted, per requirement.

A run with an arrival shape leaves, per requirement, the schedule's exact counts per whole epoch second
(``per_second``: ``t``, ``scheduled``, ``started``, ``dropped``, ``busy``, summed over the workers). The
window's counts are those of the seconds whose start lies in ``[window start, window end)``; the
summary's ``arrival`` section holds them, and the gate judges ``dropped_iterations`` from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from loadgate.analysis.window import Window

COUNTS = ("scheduled", "started", "dropped", "busy")


def per_second(block: Mapping[str, Any]) -> dict[str, list[int]] | None:
    """The block's per-second counts as equal-length lists of whole numbers (``t`` first), or None when
    they are missing or malformed."""
    per = block.get("per_second")
    if not isinstance(per, Mapping):
        return None
    out: dict[str, list[int]] = {}
    for key in ("t", *COUNTS):
        values = per.get(key)
        if not isinstance(values, list) or not all(_count(v) for v in values):
            return None
        out[key] = [int(v) for v in values]
    if len({len(v) for v in out.values()}) != 1:
        return None
    return out


def _count(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def in_window(block: Mapping[str, Any], window: Window) -> dict[str, Any]:
    """One requirement's ``arrival`` section of the summary: the schedule asked for, and what became of
    its starts in the window (``dropped_share`` of the scheduled starts, None when none was scheduled)."""
    section: dict[str, Any] = {
        "rate": block.get("rate"),
        "max_users": block.get("max_users"),
        "distribution": block.get("distribution"),
    }
    per = per_second(block)
    if per is None:
        section["reason"] = (
            "run.json's arrival block has no usable per-second counts (per_second with t, "
            "scheduled, started, dropped and busy of equal length), so the window's cannot be told"
        )
        return section
    keep = [i for i, t in enumerate(per["t"]) if window.start <= t < window.end]
    sums = {key: sum(per[key][i] for i in keep) for key in ("scheduled", "started", "dropped")}
    seconds = len(keep)
    section.update(
        seconds=seconds,
        **sums,
        dropped_share=sums["dropped"] / sums["scheduled"] if sums["scheduled"] else None,
        offered_rate=sums["scheduled"] / seconds if seconds else None,
        achieved_rate=sums["started"] / seconds if seconds else None,
        busy_max=max((per["busy"][i] for i in keep), default=0),
    )
    return section


def step_counts(blocks: Mapping[str, Any], requirements: Sequence[str], start: float, end: float) -> dict[str, Any]:
    """The ``arrival`` section of one capacity step measured over ``[start, end]``: each requirement's counts
    of the whole seconds inside it (a requirement without a block gets the reason its counts are unknown)."""
    window = Window(math.ceil(start), math.floor(end))
    return {str(r): in_window(blocks.get(r) or {}, window) for r in sorted(requirements)}


def arrival_summary(run: Mapping[str, Any], window: Window) -> dict[str, Any] | None:
    """The summary's ``arrival`` section (requirement -> :func:`in_window`), or None for a run without a shape."""
    blocks = run.get("arrival")
    if not isinstance(blocks, Mapping) or not blocks:
        return None
    return {
        str(req): in_window(block if isinstance(block, Mapping) else {}, window)
        for req, block in sorted(blocks.items())
    }

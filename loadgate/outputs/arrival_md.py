"""summary.md's section on an open-model run: per requirement, the arrival rate asked for against the one
achieved, the iterations dropped and the pool's busy users, in the analysis window and over time.

From ``summary.json``'s ``arrival`` section (the window's counts) and ``run.json``'s ``arrival`` block (the
per-second counts, drawn here as a few rows of equal spans). A run without an arrival shape gets no section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from loadgate.analysis.arrival import per_second
from loadgate.gate.verdict import format_value

ROWS = 12  # rows of the over-time table: the run's seconds merged into this many spans at most


def _rate(x: Any) -> str:
    return f"{x:,.1f}/s" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def _over_time(block: Mapping[str, Any], row: Any) -> list[str]:
    per = per_second(block)
    if not per or not per["t"]:
        return []
    k = math.ceil(len(per["t"]) / ROWS)
    lines = [
        "",
        "| From (UTC) | Seconds | Offered | Achieved | Dropped | Busy users (peak) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for i in range(0, len(per["t"]), k):
        span = slice(i, i + k)
        n = len(per["t"][span])
        when = datetime.fromtimestamp(per["t"][i], timezone.utc).strftime("%H:%M:%S")
        lines.append(
            row(
                [
                    when,
                    n,
                    _rate(sum(per["scheduled"][span]) / n),
                    _rate(sum(per["started"][span]) / n),
                    f"{sum(per['dropped'][span]):,}",
                    f"{max(per['busy'][span]):,}",
                ]
            )
        )
    return lines


def arrival_md(summary: Mapping[str, Any] | None, run: Mapping[str, Any] | None, row: Any, escape: Any) -> list[str]:
    """The section's lines (none for a run without an arrival shape); ``row`` and ``escape`` are summary.md's."""
    sections = (summary or {}).get("arrival")
    if not isinstance(sections, Mapping) or not sections:
        return []
    blocks = (run or {}).get("arrival") or {}
    lines = ["", "### Arrival rate (open model)", ""]
    for req, s in sections.items():
        pool = f", a pool of {s['max_users']:,} users" if isinstance(s.get("max_users"), int) else ""
        head = f"**{escape(req)}**: {_rate(s.get('rate')) if s.get('rate') is not None else 'a ramp'} asked{pool}."
        if s.get("reason"):
            lines += [head + " " + escape(s["reason"]), ""]
            continue
        share = format_value(s.get("dropped_share"), "ratio")
        lines.append(
            f"{head} In the analysis window: {s['scheduled']:,} starts scheduled ({_rate(s.get('offered_rate'))} "
            f"offered), {s['started']:,} started ({_rate(s.get('achieved_rate'))} achieved), {s['dropped']:,} "
            f"dropped ({share}), at most {s.get('busy_max', 0):,} users busy at once."
        )
        block = blocks.get(req)
        lines += (_over_time(block, row) if isinstance(block, Mapping) else []) + [""]
    return lines[:-1]

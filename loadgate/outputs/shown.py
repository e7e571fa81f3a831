"""Which thresholds an output made for reading lists one by one, when there are very many.

``verdict.json`` keeps every threshold's result. junit.xml, summary.md, the terminal table and report.html
are read by people and CI pages: past a cap they list the thresholds that need attention first (fail,
warn, inconclusive, skipped, then pass; in their order within a status) and count the rest in one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
RANK = {"fail": 0, "warn": 1, "inconclusive": 2, "skipped": 3, "pass": 4}
JUNIT_CASES = 200  # testcases a requirement's suite lists one by one; the rest: one case per status
MD_ROWS = 100  # rows of summary.md's and the terminal's threshold tables
REPORT_ROWS = 300  # threshold rows a requirement's traceability table in report.html lists


def status_of(item: Any) -> str:
    return str(item.get("status") if isinstance(item, dict) else item.status)


def listed(items: Sequence[T], limit: int, status: Callable[[Any], str] = status_of) -> tuple[list[T], list[T]]:
    """(the items to list, the rest): all of them, in order, up to ``limit``; else the ``limit`` most
    pressing by status, in their order within a status."""
    if len(items) <= limit:
        return list(items), []
    ranked = sorted(range(len(items)), key=lambda i: (RANK.get(status(items[i]), len(RANK)), i))
    keep = set(ranked[:limit])
    return [items[i] for i in ranked[:limit]], [items[i] for i in range(len(items)) if i not in keep]


def more_line(
    rest: Sequence[Any], where: str = "verdict.json has every one", status: Callable[[Any], str] = status_of
) -> str:
    """``and 4,950 more thresholds (4,950 inconclusive): verdict.json has every one``."""
    counts = Counter(status(r) for r in rest)
    parts = ", ".join(f"{counts[s]:,} {s}" for s in sorted(counts, key=lambda s: RANK.get(s, len(RANK))))
    return f"and {len(rest):,} more thresholds ({parts}): {where}"

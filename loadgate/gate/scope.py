"""A threshold's scope in a summary: its requirement's totals, or one request's entry (``TYPE NAME`` or ``NAME``).

The summary's request entries are indexed once per gate, so each of many thresholds finds its scope by a
look-up, not by a pass over every entry (5,000 thresholds over 5,000 requests were 25 million comparisons).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from loadgate.analysis.summary_doc import RequestStats, Stats, SummaryDoc
from loadgate.gate.thresholds import Threshold


def _requirements_of(entry: Mapping[str, Any]) -> list[str]:
    return [r.strip() for r in str(entry.get("requirement") or "").split(",")]


HINTS = 20  # "did you mean" hints at most per summary: each compares a name with every name recorded


class Requests:
    """A summary's per-request entries indexed once by (requirement, "TYPE NAME") and (requirement, NAME),
    so that each threshold finds its scope by look-up, not by a pass over every entry."""

    def __init__(self, summary: SummaryDoc) -> None:
        self.summary = summary
        self.full: dict[tuple[str, str], list[RequestStats]] = {}
        self.by_name: dict[tuple[str, str], list[RequestStats]] = {}
        self.names: dict[str, set[str]] = {}
        for e in summary["requests"]:
            full = f"{e['request_type']} {e['name']}"
            for r in dict.fromkeys(_requirements_of(e)):
                self.full.setdefault((r, full), []).append(e)
                self.by_name.setdefault((r, e["name"]), []).append(e)
                self.names.setdefault(r, set()).add(full)
        self.hints = HINTS

    def hint(self, requirement: str, request: str) -> str:
        if self.hints <= 0:
            return ""
        self.hints -= 1
        close = difflib.get_close_matches(request, sorted(self.names.get(requirement, ())), n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""


def scope_of(t: Threshold, index: Requests) -> tuple[Stats | None, str | None]:
    """The STATS dict for the threshold's scope in the indexed summary, or None and why not."""
    if t.request is None:
        stats = index.summary["requirements"].get(t.requirement)
        return (stats, None) if stats else (None, f"no requests recorded for {t.requirement} in the analysis window")
    full = index.full.get((t.requirement, t.request), [])
    if len(full) == 1:
        return full[0], None
    by_name = full or index.by_name.get((t.requirement, t.request), [])
    if len(by_name) == 1:
        return by_name[0], None
    if len(by_name) > 1:
        kinds = ", ".join(sorted({str(e["request_type"]) for e in by_name}))
        return None, (
            f"request {t.request!r} is ambiguous: it was sent as {kinds}; "
            f"name one in the threshold, like {by_name[0]['request_type']} {t.request}"
        )
    return None, (
        f"no request {t.request!r} recorded for {t.requirement} in the analysis window"
        f"{index.hint(t.requirement, t.request)}"
    )

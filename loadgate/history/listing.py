"""``loadgate history``'s table: the recorded runs as aligned text, newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from loadgate.history.store import RunRecord


def format_runs(records: Sequence[RunRecord]) -> str:
    """The history as an aligned table, newest first."""

    def when(t: float | None) -> str:
        return "-" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")

    header = ["run", "kind", "started (UTC)", "requirements", "users", "verdict", "exit", "baseline"]
    rows = [
        [
            r.run_id,
            r.kind,
            when(r.started),
            ",".join(r.requirements),
            "-" if r.users is None else str(r.users),
            r.verdict + (" [strict]" if r.strict else ""),
            str(r.exit_code),
            r.baseline or "-",
        ]
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows])

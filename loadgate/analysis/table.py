"""The aligned text table ``loadgate analyze`` prints."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def format_summary_table(summary: dict[str, Any]) -> str:
    """The aligned text table ``loadgate analyze`` prints: per request, per requirement, overall."""

    def row(kind: str, name: str, req: str, s: dict[str, Any]) -> list[str]:
        t = s["response_time_ms"]
        return [
            kind,
            name,
            req,
            str(s["requests"]),
            str(s["failures"]),
            f"{100 * s['error_rate']:.2f}%",
            f"{s['throughput']:.2f}",
            *("-" if t.get(k) is None else f"{t[k]:.1f}" for k in ("p50", "p95", "p99", "max")),
        ]

    rows = [["Type", "Name", "Requirement", "Requests", "Fails", "Err%", "Req/s", "p50", "p95", "p99", "Max"]]
    rows += [row(e["request_type"], e["name"], e["requirement"] or "-", e) for e in summary["requests"]]
    rows += [row("", "(requirement)", rid, s) for rid, s in summary["requirements"].items()]
    rows.append(row("", "Aggregated", "", summary["overall"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows
    ]
    rule = "-" * len(lines[0])
    lines[1:1] = [rule]
    lines.insert(len(lines) - 1 - len(summary["requirements"]), rule)
    w = summary["window"]
    when = " → ".join(
        datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") for x in (w["start"], w["end"])
    )
    return "\n".join([f"Window: {when} UTC ({w['seconds']:.1f} s), response times in ms", *lines])

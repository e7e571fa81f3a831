"""``loadgate compare``'s terminal table of a ``loadgate.compare/1`` document."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from loadgate.history.compare import TOLERANCE_ERRORS, TOLERANCE_LATENCY


def _fmt_change(x: float | None, kind: str) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x * 100:+.2f}pp" if kind == "absolute" else f"{x * 100:+.1f}%"


def _fmt_value(x: float | None, metric: str) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.2f}%" if metric == "error_rate" else f"{x:.1f} ms"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _plain(text: object) -> str:
    """Printable on a terminal: control characters (escape sequences from a server) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def format_compare(doc: Mapping, *, color: bool = False) -> str:
    """The comparison as an aligned table and a verdict line."""
    header = ["requirement", "request", "metric", "baseline", "candidate", "change", "95% CI", "p", "status"]
    rows = []
    for r in doc["requests"]:
        kind = r.get("change_kind", "relative")
        ci = r.get("ci")
        p = r.get("p_value")
        rows.append(
            [
                _plain(r["requirement"] or "-"),
                "(all requests)" if r["request_type"] is None else _plain(f"{r['request_type']} {r['name']}"),
                r["metric"],
                _fmt_value(r["baseline"], r["metric"]),
                _fmt_value(r["candidate"], r["metric"]),
                _fmt_change(r["change"], kind),
                f"[{_fmt_change(ci[0], kind)}, {_fmt_change(ci[1], kind)}]" if ci else "(too few)",
                "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"),
                r["status"],
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[1] = min(widths[1], 40)
    right = {3, 4, 5, 7}
    colors = {"regression": "31;1", "improvement": "32", "unchanged": "0"}
    out = [f"baseline:  {_plain(doc['baseline'])}", f"candidate: {_plain(doc['candidate'])}"]
    for i, row in enumerate([header, *rows]):
        cells = [(c if len(c) <= widths[j] else c[: widths[j] - 1] + "~") for j, c in enumerate(row)]
        cells = [c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(cells)]
        if color and i > 0:
            cells[-1] = f"\x1b[{colors.get(row[-1], '0')}m{row[-1]}\x1b[0m"
        out.append("  ".join(cells).rstrip())
    for u in doc.get("unmatched") or ():
        what = "(all requests)" if u["request_type"] is None else f"{u['request_type']} {u['name']}"
        out.append(_plain(f"  note: {u['requirement'] or '-'} {what} only in the {u['only_in']}; not compared"))
    n = sum(r["status"] == "regression" for r in doc["requests"])
    tol = doc.get("tolerance") or {}
    out.append(
        f"verdict: {doc['verdict'].upper()} ({n} regression{'s' if n != 1 else ''}; a regression is a "
        f"95% CI entirely beyond the tolerance: latency +{tol.get('latency', TOLERANCE_LATENCY) * 100:g}%, "
        f"error rate +{tol.get('error_rate', TOLERANCE_ERRORS) * 100:g}pp)"
    )
    return "\n".join(out)

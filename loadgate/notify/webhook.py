"""A generic webhook: one JSON document (``loadgate.notification/1``) with the verdict document, the
baseline comparison, links and the facts of the run. JSON needs no escaping beyond its own encoding;
the receiver decides how to show the text."""

from __future__ import annotations

from dataclasses import asdict

from loadgate.notify.message import Message

SCHEMA = "loadgate.notification/1"


def payload(m: Message) -> dict:
    return {
        "schema": SCHEMA,
        "headline": m.headline,
        "sent_because": list(m.because),
        "verdict": m.verdict,
        "exit_code": m.exit_code,
        "run_id": m.run_id,
        "requirements": [{"id": r, "title": t, "outcome": o} for r, t, o in m.requirements],
        "breached": [asdict(b) for b in m.breached],
        "reasons": list(m.reasons),
        "errors": [{"request": r, "message": e, "count": n} for r, e, n in m.errors],
        "run": {"duration": m.duration, "users": m.users, "commit": m.commit},
        "links": {"report": m.report, "report_is_url": m.report_is_url},
        "verdict_document": m.documents.get("verdict"),
        "comparison": m.documents.get("comparison"),
    }

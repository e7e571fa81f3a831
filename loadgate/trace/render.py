"""What ``loadgate trace`` prints: plain lines, GitHub Actions annotations, or one JSON document; and
``trace --ids``, where each requirement ID is defined.

Subjects and author names are the committers' free text: control characters (terminal escape
sequences) are shown as '?', and annotations escape what the runner would read as a command.
"""

from __future__ import annotations

import json
import re

from loadgate.trace.audit import Trace, Traced
from loadgate.trace.catalogue import Catalogue

SCHEMA = "loadgate.trace/1"
IDS_SCHEMA = "loadgate.trace-ids/1"
FORMATS = ("plain", "github", "json")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def plain_text(text: object) -> str:
    return _CONTROL.sub("?", str(text))


def escape_data(text: str) -> str:
    """A GitHub workflow command's message, escaped as the runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A GitHub workflow command's property (file=, title=), escaped as the runner reads it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _range_line(t: Trace) -> str:
    since = t.range.since[:7] if t.range.since else "the first commit"
    return (
        f"loadgate trace: {len(t.commits)} commit(s) from {since} (exclusive) to {t.range.head[:7]}; from {t.range.how}"
    )


def _commit_line(t: Traced) -> str:
    c = t.commit
    ids = ",".join(t.ids) or "-"
    state = f"skipped ({t.skipped})" if t.skipped else "untraced" if t.problems else "ok"
    return f"{c.short}  {state:<17} {plain_text(ids):<24} {plain_text(c.subject)} ({plain_text(c.author)})"


def _closing(t: Trace) -> str:
    skipped = [x for x in t.commits if x.skipped]
    checked = len(t.commits) - len(skipped)
    merges = sum(1 for x in skipped if x.skipped == "merge")
    allowed = len(skipped) - merges
    extra = f"; skipped {merges} merge(s) and {allowed} allowed commit(s)" if skipped else ""
    word = "FAILED" if t.untraced else "ok"
    return f"{word}: {checked - len(t.untraced)} of {checked} commit(s) traced{extra}"


def render(t: Trace, fmt: str) -> list[str]:
    """The lines ``trace`` prints in ``fmt``."""
    if fmt == "json":
        return [json.dumps(to_dict(t), indent=2, ensure_ascii=False)]
    lines = [_range_line(t)]
    if fmt == "plain":
        lines += [_commit_line(x) for x in t.commits]
        for x in t.untraced:
            for p in x.problems:
                lines.append(
                    f'error: {x.commit.short} "{plain_text(x.commit.subject)}" ({plain_text(x.commit.author)}): '
                    f"{plain_text(p.message)}"
                )
        lines += [f"note: {plain_text(n)}" for n in t.notes]
    else:
        for x in t.untraced:
            for p in x.problems:
                props = [f"file={escape_property(p.file)}"] if p.file else []
                props.append(f"title={escape_property('Requirements traceability: commit ' + x.commit.short)}")
                lines.append(
                    f"::error {','.join(props)}::{escape_data(plain_text(x.commit.subject))}: "
                    f"{escape_data(plain_text(p.message))}"
                )
        lines += [f"::warning::{escape_data(plain_text(n))}" for n in t.notes]
    return lines + [_closing(t)]


def to_dict(t: Trace) -> dict:
    """The ``loadgate.trace/1`` document."""
    return {
        "schema": SCHEMA,
        "range": t.range.to_dict(),
        "pattern": t.pattern,
        "traced": t.ok,
        "commits": [x.to_dict() for x in t.commits],
        "untraced": [x.commit.sha for x in t.untraced],
        "notes": list(t.notes),
        "defined": sorted(t.catalogue.ids()),
    }


def render_ids(catalogue: Catalogue, fmt: str) -> list[str]:
    """``trace --ids``: every ID and where it is defined (threshold file, scenario task, manifest object)."""
    by_id = catalogue.by_id()
    if fmt == "json":
        return [
            json.dumps(
                {
                    "schema": IDS_SCHEMA,
                    "ids": {i: [d.to_dict() for d in ds] for i, ds in by_id.items()},
                    "notes": list(catalogue.notes),
                },
                indent=2,
                ensure_ascii=False,
            )
        ]
    rows = [[i, d.kind, f"{d.file}:{d.line}" if d.line else d.file, d.detail] for i, ds in by_id.items() for d in ds]
    header = ["id", "defined in", "where", "what"]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(3)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths)), plain_text(r[3])]).rstrip() for r in [header, *rows]
    ]
    note = "note: " if fmt == "plain" else "::warning::"
    return lines + [note + plain_text(n) for n in catalogue.notes] + [f"{len(by_id)} requirement ID(s) defined"]


def changes_lines(changes: dict | None) -> list[str]:
    """For the terminal: the commits behind each regressed requirement, those referencing it first."""
    if not changes or not changes.get("regressions"):
        return []
    span = f"{str(changes.get('from') or '?')[:7]}..{str(changes.get('to') or '?')[:7]}"
    lines = [f"commits since the baseline {plain_text(changes.get('baseline'))} ({span}):"]
    if changes.get("reason"):
        lines.append(f"  none listed: {plain_text(changes['reason'])}")
    if changes.get("note"):
        lines.append(f"  note: {plain_text(changes['note'])}")
    for req, entries in changes["regressions"].items():
        if not entries:
            continue
        lines.append(f"  {req} regressed; commits referencing it first (* = another change):")
        lines += [
            f"  {' ' if e.get('references') else '*'} {str(e.get('commit'))[:7]}  {str(e.get('date'))[:10]}  "
            f"{plain_text(e.get('subject'))} ({plain_text(e.get('author'))})"
            for e in entries
        ]
    return lines

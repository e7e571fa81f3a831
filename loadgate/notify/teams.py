"""Microsoft Teams: an Adaptive Card (1.4) in the message envelope that Teams and Power Automate
workflow webhooks accept.

TextBlock and FactSet texts are a CommonMark subset: every dynamic text in them is escaped (a backslash
before each Markdown punctuation character, so ``*``, ``_``, ``[text](url)``, ``<tag>``, ``&entity;`` and a
leading ``1.`` stay literal) and kept on one line. Lines that carry untrusted text (request names, server
messages) are RichTextBlock TextRuns, which Adaptive Cards never read as Markdown; their ``scheme://`` is
broken so that no client links them, and ``{{`` so that no ``{{DATE(…)}}`` function runs.
"""

from __future__ import annotations

import re

from loadgate.notify.message import Message
from loadgate.notify.text import one_line, unlinked

_MD = re.compile(r"([\\`*_{}\[\]()#!|<>&~])")
_LEADING = re.compile(r"^(\s*)([-+]|\d+\.)")
_COLOR = {"pass": "Good", "warn": "Warning", "fail": "Attention", "inconclusive": "Warning"}


def escape(text: object) -> str:
    """Our own text for a TextBlock: Markdown punctuation backslash-escaped, a list marker at the start too."""
    out = _MD.sub(r"\\\1", one_line(text, 500))
    return _LEADING.sub(lambda m: m.group(1) + "\\" + m.group(2), out)


def literal(text: object) -> str:
    """Untrusted text for a TextRun: one line, no links, no template function."""
    return unlinked(one_line(text)).replace("{{", "{\u200b{")


def _rich(*runs: str | tuple[str, bool], **extra) -> dict:
    """A RichTextBlock of TextRuns (never Markdown); a (text, True) run is bold."""
    inlines = [
        {"type": "TextRun", "text": r[0], "weight": "Bolder"}
        if isinstance(r, tuple)
        else {"type": "TextRun", "text": r}
        for r in runs
    ]
    return {"type": "RichTextBlock", "inlines": inlines, **extra}


def _block(text: str, **extra) -> dict:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def card(m: Message) -> dict:
    body: list[dict] = [
        _block(escape(m.headline), weight="Bolder", size="Medium", color=_COLOR.get(m.verdict, "Default")),
        *[_rich((r + " ", True), literal(f"{t} ({o})" if t else f"({o})")) for r, t, o in m.requirements],
        {
            "type": "FactSet",
            "facts": [
                {"title": "Verdict", "value": escape(f"{m.verdict.upper()} (exit {m.exit_code})")},
                {"title": "Sent because", "value": escape(", ".join(m.because))},
                {"title": "Duration", "value": escape(m.duration)},
                {"title": "Users", "value": escape(m.users)},
                {"title": "Commit", "value": escape(m.commit)},
                {"title": "Run", "value": escape(m.run_id)},
            ],
        },
    ]
    if m.breached:
        body.append(_block("**Thresholds not met**", spacing="Medium"))
        body += [
            _rich(
                (f"{b.status.upper()} ", True),
                literal(
                    f"{b.requirement} {b.metric}"
                    + (f" of {b.request}" if b.request else "")
                    + f": {b.value}, {b.level} — {b.source}"
                ),
                spacing="None",
            )
            for b in m.breached
        ]
        if m.more_breached:
            body.append(_block(escape(f"… and {m.more_breached} more"), spacing="None"))
    if m.delta:
        body.append(_rich(("Against baseline ", True), literal(m.baseline), spacing="Medium"))
        body += [_rich(literal(d), spacing="None") for d in m.delta]
    if m.reasons:
        body.append(_block("**Reasons**", spacing="Medium"))
        body += [_rich(literal(r), spacing="None") for r in m.reasons]
    if m.errors:
        body.append(_block("**Commonest errors**", spacing="Medium"))
        body += [_rich((f"{n}× ", True), literal(f"{r}: {e}"), spacing="None") for r, e, n in m.errors]
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if m.report_is_url and m.report.startswith(("http://", "https://")):
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open the report", "url": m.report}]
    else:
        body.append(_block(f"Report: {escape(m.report)}", spacing="Medium", isSubtle=True))
    return content


def payload(m: Message) -> dict:
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card(m)}
        ],
    }

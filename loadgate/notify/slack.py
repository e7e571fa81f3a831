"""Slack: an incoming-webhook payload with Block Kit blocks and a plain ``text`` fallback.

Every dynamic text is escaped for mrkdwn (``&``, ``<``, ``>``: Slack's control characters, so no link,
mention or ``<!channel>`` can be formed); untrusted text (request names, server messages) also goes
into code spans, where Slack neither formats nor links it.
"""

from __future__ import annotations

from loadgate.notify.message import Message, plain_lines
from loadgate.notify.text import one_line, unlinked

SECTION_MAX = 2900  # Slack's limit is 3000 characters per section text
_ICON = {"pass": ":white_check_mark:", "warn": ":warning:", "fail": ":x:", "inconclusive": ":grey_question:"}


def escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: object) -> str:
    """Untrusted text as an inline code span: one line, no backticks, no links, escaped."""
    return "`" + escape(unlinked(one_line(text)).replace("`", "'")) + "`"


def _section(text: str) -> dict:
    if len(text) > SECTION_MAX:
        text = text[: SECTION_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def link(url: str, label: str) -> str:
    """``<url|label>`` with the URL's own ``|``, ``<``, ``>`` percent-encoded, the label escaped."""
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    return f"<{escape(safe)}|{escape(label)}>"


def payload(m: Message) -> dict:
    reqs = "\n".join(f"*{escape(r)}* {escape(one_line(t))} ({escape(o)})" for r, t, o in m.requirements)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": one_line(m.headline, 150)}},
        _section(
            f"{_ICON.get(m.verdict, '')} *Verdict:* {escape(m.verdict.upper())} (exit {m.exit_code})"
            f" · sent because: {escape(', '.join(m.because))}\n{reqs}"
        ),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Duration*\n{escape(m.duration)}"},
                {"type": "mrkdwn", "text": f"*Users*\n{escape(m.users)}"},
                {"type": "mrkdwn", "text": f"*Commit*\n{escape(m.commit)}"},
                {"type": "mrkdwn", "text": f"*Run*\n{escape(m.run_id)}"},
            ],
        },
    ]
    if m.breached:
        lines = [
            f"• {escape(b.status.upper())} {escape(b.requirement)} `{escape(b.metric)}`"
            + (f" of {code(b.request)}" if b.request else "")
            + f": {escape(b.value)}, {code(b.level) if b.status == 'inconclusive' else escape(b.level)}"
            f" — {escape(b.source)}"
            for b in m.breached
        ]
        lines += [f"… and {m.more_breached} more"] if m.more_breached else []
        blocks.append(_section("*Thresholds not met*\n" + "\n".join(lines)))
    if m.delta:
        blocks.append(_section(f"*Against baseline* {code(m.baseline)}\n" + "\n".join(f"• {code(d)}" for d in m.delta)))
    if m.reasons:
        blocks.append(_section("*Reasons*\n" + "\n".join(f"• {code(r)}" for r in m.reasons)))
    if m.errors:
        blocks.append(
            _section("*Commonest errors*\n" + "\n".join(f"• {n}× {code(r)}: {code(e)}" for r, e, n in m.errors))
        )
    where = link(m.report, "report.html") if m.report_is_url else code(m.report)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Report: {where}"}]})
    return {"text": escape(one_line(plain_lines(m)[0], 150)), "blocks": blocks}

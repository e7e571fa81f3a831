"""Email: a multipart message, plain text and HTML, rendered with Jinja2's autoescape (every value is
HTML-escaped; untrusted text also has its links broken). The subject is one line, so no header can be
injected."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import jinja2

from loadgate.notify.message import Message, plain_lines
from loadgate.notify.text import one_line, unlinked

_COLOR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "inconclusive": "#6e7781"}
_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ m.headline }}</title></head>
<body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328; max-width: 46em">
<h2 style="color: {{ color }}; margin-bottom: .2em">{{ m.headline }}</h2>
{% for r, t, o in m.requirements %}<p style="margin: .2em 0"><b>{{ r }}</b> {{ t }} ({{ o }})</p>{% endfor %}
<table style="border-collapse: collapse; margin: .8em 0" cellpadding="4">
<tr><th align="left">Verdict</th><td>{{ m.verdict | upper }} (exit {{ m.exit_code }})</td></tr>
<tr><th align="left">Sent because</th><td>{{ m.because | join(", ") }}</td></tr>
<tr><th align="left">Duration</th><td>{{ m.duration }}</td></tr>
<tr><th align="left">Users</th><td>{{ m.users }}</td></tr>
<tr><th align="left">Commit</th><td><code>{{ m.commit }}</code></td></tr>
<tr><th align="left">Run</th><td>{{ m.run_id }}</td></tr>
</table>
{% if m.breached %}<h3>Thresholds not met</h3>
<table style="border-collapse: collapse" cellpadding="4" border="1">
<tr><th>status</th><th>requirement</th><th>metric</th><th>request</th><th>value</th><th>level</th><th>where</th></tr>
{% for b in m.breached %}<tr><td style="color: {{ colors.get(b.status, '') }}">{{ b.status }}</td><td>{{ b.requirement }}</td>
<td>{{ b.metric }}</td><td><code>{{ inert(b.request or "") }}</code></td><td>{{ b.value }}</td><td>{{ inert(b.level) }}</td>
<td><code>{{ b.source }}</code></td></tr>
{% endfor %}</table>{% if m.more_breached %}<p>… and {{ m.more_breached }} more</p>{% endif %}{% endif %}
{% if m.delta %}<h3>Against baseline {{ inert(m.baseline or "") }}</h3>
<ul>{% for d in m.delta %}<li><code>{{ inert(d) }}</code></li>{% endfor %}</ul>{% endif %}
{% if m.reasons %}<h3>Reasons</h3>
<ul>{% for r in m.reasons %}<li><code>{{ inert(r) }}</code></li>{% endfor %}</ul>{% endif %}
{% if m.errors %}<h3>Commonest errors</h3>
<ul>{% for r, e, n in m.errors %}<li>{{ n }}× <code>{{ inert(r) }}</code>: <code>{{ inert(e) }}</code></li>{% endfor %}</ul>{% endif %}
<p>Report: {% if m.report_is_url and m.report.startswith(("http://", "https://")) %}<a href="{{ m.report }}">{{ m.report }}</a>{% else %}<code>{{ m.report }}</code>{% endif %}</p>
<p style="color: #6e7781; font-size: small">Sent by loadgate.</p>
</body></html>
"""
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def html(m: Message) -> str:
    return _ENV.from_string(_TEMPLATE).render(
        m=m, color=_COLOR.get(m.verdict, "#1f2328"), colors=_COLOR, inert=lambda text: unlinked(one_line(text))
    )


def subject(m: Message) -> str:
    title = "; ".join(t for _r, t, _o in m.requirements if t)
    return one_line(f"[loadgate] {m.headline}" + (f" — {title}" if title else ""), 200)


def build(m: Message, sender: str, to: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject(m)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content("\n".join(plain_lines(m)) + "\n")
    msg.add_alternative(html(m), subtype="html")
    return msg

"""Where a notification goes: parsed, its secret resolved from the environment, and named without it.

A ``--notify`` value (or a word of ``$LOADGATE_NOTIFY``) is ``[KIND:]WHAT``:

- ``https://hooks.slack.com/services/…``: a URL; the kind follows from the host (hooks.slack.com: slack;
  *.webhook.office.com, *.logic.azure.com, *.powerplatform.com: teams; else webhook) unless KIND says;
- ``SLACK_WEBHOOK_URL`` or ``$SLACK_WEBHOOK_URL`` (quoted, so the shell leaves it): the name of an
  environment variable holding the URL (which may itself start with ``KIND:``);
- ``email:team@example.com,ops@example.com`` (or ``mailto:``): recipients; the SMTP server comes from
  ``$LOADGATE_SMTP_HOST``, ``_PORT``, ``_FROM``, ``_USER``, ``_PASSWORD``, ``_STARTTLS``, ``_CA_FILE``.

A target's ``label`` (kind, scheme, host, the variable it came from) is what is printed and recorded;
``scrub`` removes the secret from any text (an error message) before it is printed or recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from loadgate.errors import ConfigError
from loadgate.gate.notify_spec import ADDRESS, DEFAULT_ON, ENV_NAME, KINDS, NotifyEntry, is_loopback

ENV_TARGETS = "LOADGATE_NOTIFY"
SMTP_ENV = "LOADGATE_SMTP_"
REDACTED = "[redacted]"
_KIND_PREFIX = re.compile(r"^(slack|teams|webhook|email|mailto):(?!//)", re.I)


@dataclass(frozen=True)
class Target:
    """A resolved place to send to. ``problem`` says why it cannot be sent (a variable not set)."""

    entry: NotifyEntry
    label: str
    url: str | None = None
    username: str | None = None
    password: str | None = None
    problem: str | None = None

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def identity(self) -> tuple:
        """Two entries with the same identity are one recipient: it gets one message."""
        e = self.entry
        return (e.kind, self.url or e.url_env) if e.kind != "email" else (e.kind, e.host, e.port, e.to)

    def scrub(self, text: str) -> str:
        """``text`` without any part of this target's secrets."""
        secrets = [s for s in (self.url, self.password) if s]
        if self.url:
            parts = urlsplit(self.url)
            secrets += [parts.path + (f"?{parts.query}" if parts.query else ""), parts.query]
            secrets += [p for p in parts.path.split("/") if len(p) >= 6]
            if len(parts.path) > 1:
                secrets.append(parts.path)
        for s in sorted({s for s in secrets if s}, key=len, reverse=True):
            text = text.replace(s, REDACTED)
        return text


def kind_of_url(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith((".webhook.office.com", ".logic.azure.com", ".powerplatform.com", ".powerautomate.com")):
        return "teams"
    return "webhook"


def url_label(url: str) -> str:
    """``https://hooks.slack.com/[redacted]``: scheme, host and port only."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/{REDACTED}"


def parse_cli(text: str, on: Sequence[str] = DEFAULT_ON) -> NotifyEntry:
    """One ``--notify`` value -> an entry; ConfigError says what is wrong and the forms that work."""
    raw = text.strip()
    m = _KIND_PREFIX.match(raw)
    kind = m.group(1).lower() if m else None
    rest = raw[m.end() :] if m else raw
    if kind in ("email", "mailto"):
        to = tuple(a.strip() for a in rest.split(",") if a.strip())
        if not to or not all(ADDRESS.match(a) for a in to):
            raise ConfigError(
                f"--notify {text}: {rest!r} is not a list of email addresses; expected "
                "email:team@example.com,ops@example.com"
            )
        return _smtp_entry(to, tuple(on))
    if rest.startswith(("http://", "https://")):
        if not urlsplit(rest).hostname:
            raise ConfigError(f"--notify {_label_of_spec(text)}: the URL has no host; expected a webhook URL")
        return NotifyEntry(kind or kind_of_url(rest), tuple(on), url=rest, source="--notify")
    name = rest[1:].strip("{}") if rest.startswith("$") else rest
    if ENV_NAME.match(name):
        return NotifyEntry(kind or "", tuple(on), url_env=name, source="--notify")
    raise ConfigError(
        f"--notify {_label_of_spec(text)}: not a URL, an environment variable's name or email:ADDRESSES; "
        "expected https://hooks.slack.com/…, slack:SLACK_WEBHOOK_URL, teams:$TEAMS_URL or "
        "email:team@example.com (kinds: " + ", ".join(KINDS) + ")"
    )


def _smtp_entry(to: tuple[str, ...], on: tuple[str, ...]) -> NotifyEntry:
    env = os.environ
    starttls = env.get(SMTP_ENV + "STARTTLS", "true").strip().lower() not in ("0", "false", "no", "off")
    port = env.get(SMTP_ENV + "PORT", "").strip()
    user = SMTP_ENV + "USER" if env.get(SMTP_ENV + "USER") else None
    return NotifyEntry(
        "email",
        on,
        host=env.get(SMTP_ENV + "HOST") or None,
        port=int(port) if port.isdigit() else (587 if starttls else 25),
        sender=env.get(SMTP_ENV + "FROM") or None,
        to=to,
        username_env=user,
        password_env=SMTP_ENV + "PASSWORD" if user else None,
        starttls=starttls,
        ca_file=env.get(SMTP_ENV + "CA_FILE") or None,
        source="--notify",
    )


def cli_entries(
    values: Sequence[str] | None, on: Sequence[str] = DEFAULT_ON, environ: Mapping[str, str] = os.environ
) -> list[NotifyEntry]:
    """The ``--notify`` values, then the words of ``$LOADGATE_NOTIFY``."""
    words = [*(values or ()), *(environ.get(ENV_TARGETS) or "").split()]
    return [parse_cli(w, on) for w in words if w.strip()]


def resolve(entry: NotifyEntry, environ: Mapping[str, str] = os.environ) -> Target:
    """The entry with its secrets read from the environment; ``problem`` set when one is missing."""
    if entry.kind == "email":
        label = f"email smtp://{entry.host or '?'}:{entry.port} to {', '.join(entry.to)}"
        missing = [n for n, v in ((SMTP_ENV + "HOST", entry.host), (SMTP_ENV + "FROM", entry.sender)) if not v]
        if missing:
            return Target(entry, label, problem=f"${missing[0]} is not set: the SMTP server of email:… targets")
        user = environ.get(entry.username_env) if entry.username_env else None
        password = environ.get(entry.password_env) if entry.password_env else None
        if entry.username_env and (not user or not password):
            gone = entry.username_env if not user else entry.password_env
            return Target(entry, label, problem=f"${gone} is not set here; the login needs it")
        if user and not entry.starttls and not is_loopback(entry.host or ""):
            return Target(
                entry,
                label,
                password=password,
                problem=f"refusing to send the SMTP password to {entry.host} without STARTTLS",
            )
        return Target(entry, label, username=user, password=password)
    url, via = entry.url, ""
    if entry.url_env:
        via = f" (${entry.url_env})"
        url = (environ.get(entry.url_env) or "").strip()
        if not url:
            return Target(
                entry,
                f"{entry.kind or 'webhook'} ${entry.url_env}",
                problem=f"${entry.url_env} is not set here, so there is no URL to send to",
            )
        m = _KIND_PREFIX.match(url)
        if m and m.group(1).lower() in ("slack", "teams", "webhook"):
            entry = replace(entry, kind=entry.kind or m.group(1).lower())
            url = url[m.end() :]
    kind = entry.kind or kind_of_url(url or "")
    entry = replace(entry, kind=kind)
    if not url or not urlsplit(url).hostname or urlsplit(url).scheme not in ("http", "https"):
        return Target(entry, f"{kind}{via}", url=url, problem="the value is not an http(s) URL")
    return Target(entry, f"{kind} {url_label(url)}{via}", url=url)


def _label_of_spec(text: str) -> str:
    """A ``--notify`` value as it may be shown: a URL's path and query replaced."""
    m = _KIND_PREFIX.match(text.strip())
    rest = text.strip()[m.end() :] if m else text.strip()
    if rest.startswith(("http://", "https://")):
        return (text.strip()[: m.end()] if m else "") + url_label(rest)
    if "/" in rest or "?" in rest:  # a URL without its scheme still carries its secret path
        return text.strip()[: len(text.strip()) - len(rest)] + re.split(r"[/?]", rest, maxsplit=1)[0] + "/" + REDACTED
    return text


def redact_argv(argv: Sequence[str]) -> list[str]:
    """The command line as it may be recorded (run.json, the audit log): ``--notify`` URLs without their secret."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append(_label_of_spec(arg))
            hide = False
        elif arg == "--notify":
            out.append(arg)
            hide = True
        elif arg.startswith("--notify="):
            out.append("--notify=" + _label_of_spec(arg[len("--notify=") :]))
        else:
            out.append(arg)
    return out


def check_warnings(files) -> list[str]:
    """``loadgate check``: a warning per threshold-file entry whose secret is not in this environment."""
    out = []
    for tf in files:
        for e in tf.notify:
            problem = resolve(e).problem
            if problem:
                out.append(
                    f"warning: {e.source}: notify {e.kind}: {problem}; a run here would not send it "
                    "(set it where the pipeline keeps its secrets)"
                )
    return out

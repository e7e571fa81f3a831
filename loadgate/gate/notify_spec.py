"""The ``notify:`` list of a threshold file: who hears about the requirement's verdict, checked with file:line.

Secrets never sit in the file: a webhook's URL comes from the environment variable ``url_env`` names,
an SMTP login from ``username_env`` / ``password_env``. A literal ``url:`` or ``password:`` is an error
that says so. Delivery, selection and message building live in :mod:`loadgate.notify`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from loadgate.gate.yaml_lines import FileErrors, LineMap, LineSeq, is_int, quote

KINDS = ("slack", "teams", "webhook", "email")
OUTCOMES = ("fail", "warn", "inconclusive", "pass", "recovered", "regressed", "resources")
DEFAULT_ON = ("fail", "inconclusive", "recovered")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ADDRESS = re.compile(r"^[^@\s,<>\"]+@[^@\s,<>\"]+$")
_COMMON = ("kind", "on")
_KEYS = {
    "slack": (*_COMMON, "url_env"),
    "teams": (*_COMMON, "url_env"),
    "webhook": (*_COMMON, "url_env"),
    "email": (*_COMMON, "host", "port", "from", "to", "username_env", "password_env", "starttls", "ca_file"),
}
_SECRET_KEYS = {
    "url": "url_env",
    "webhook": "url_env",
    "webhook_url": "url_env",
    "password": "password_env",
    "username": "username_env",
    "user": "username_env",
}


@dataclass(frozen=True)
class NotifyEntry:
    """One place to send a verdict to. ``source`` is ``file:line`` (or ``--notify`` for the command line)."""

    kind: str
    on: tuple[str, ...] = DEFAULT_ON
    url_env: str | None = None  # slack, teams, webhook: the variable holding the URL
    url: str | None = None  # only from the command line / $LOADGATE_NOTIFY, never from a file
    host: str | None = None  # email: the SMTP server
    port: int | None = None
    sender: str | None = None
    to: tuple[str, ...] = ()
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = True
    ca_file: str | None = None
    source: str = ""


def parse_on(raw: Any) -> tuple[str, ...]:
    """``fail`` or ``[fail, recovered]`` or ``"fail,recovered"`` -> the outcomes; ValueError names the bad one."""
    items = raw if isinstance(raw, list) else str(raw).split(",") if isinstance(raw, str) else [raw]
    out: list[str] = []
    for item in items:
        word = str(item).strip().lower() if isinstance(item, str) else item
        if word not in OUTCOMES:
            close = difflib.get_close_matches(str(word), OUTCOMES, n=1, cutoff=0.6)
            raise ValueError(f"{quote(item)} is not an outcome" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if word not in out:
            out.append(word)
    if not out:
        raise ValueError("the list is empty")
    return tuple(out)


def parse(f: FileErrors, raw: Any, line: int) -> tuple[NotifyEntry, ...]:
    """The ``notify:`` block of a threshold file."""
    if not isinstance(raw, LineSeq) or not raw:
        raise f.error(
            line,
            "notify",
            f"{quote(raw)} is not a non-empty list",
            "a list of entries like '- kind: slack' with url_env: SLACK_WEBHOOK_URL",
        )
    return tuple(_entry(f, item, at, f"notify[{i}]") for i, (item, at) in enumerate(zip(raw, raw.item_lines)))


def _entry(f: FileErrors, item: Any, line: int, where: str) -> NotifyEntry:
    if not isinstance(item, LineMap):
        raise f.error(line, where, f"{quote(item)} is not a mapping", "an entry like '- kind: slack' with url_env")
    if True in item:  # YAML 1.1 reads the key "on" as true; it is our "on"
        item["on"] = item.pop(True)
        item.key_lines["on"] = item.key_lines.pop(True)
    lines = item.key_lines
    kind = item.get("kind")
    if "kind" not in item:
        raise f.error(line, f"{where}.kind", "missing", "one of " + ", ".join(KINDS))
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.6)
        raise f.error(
            lines["kind"],
            f"{where}.kind",
            f"{quote(kind)} is not a kind of notification" + (f" (did you mean {close[0]!r}?)" if close else ""),
            "one of " + ", ".join(KINDS),
        )
    for key, instead in _SECRET_KEYS.items():
        if key in item:
            raise f.error(
                lines[key],
                f"{where}.{key}",
                "a secret does not belong in a threshold file (it is "
                "committed, copied into reports and read by everyone)",
                f"{instead}: NAME, the environment variable that holds it (a CI secret)",
            )
    f.check_keys(item, where, _KEYS[kind])
    try:
        on = parse_on(item["on"]) if "on" in item else DEFAULT_ON
    except ValueError as e:
        raise f.error(lines["on"], f"{where}.on", str(e), "a list of " + ", ".join(OUTCOMES)) from None
    source = f"{f.path}:{line}"
    if kind != "email":
        return NotifyEntry(kind, on, url_env=_env(f, item, where, "url_env", required=True), source=source)
    return _email(f, item, line, where, on, source)


def _env(f: FileErrors, item: LineMap, where: str, key: str, *, required: bool = False) -> str | None:
    if key not in item:
        if required:
            raise f.error(
                item.line,
                f"{where}.{key}",
                "missing",
                "the name of the environment variable that holds the webhook URL, like SLACK_WEBHOOK_URL",
            )
        return None
    value = item[key]
    if isinstance(value, str) and value.startswith("$"):
        value = value[1:].strip("{}")
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise f.error(
            item.key_lines[key],
            f"{where}.{key}",
            f"{quote(item[key])} is not an environment variable name",
            "a name like SLACK_WEBHOOK_URL (letters, digits, _), not the secret itself",
        )
    return value


def _email(f: FileErrors, item: LineMap, line: int, where: str, on: tuple[str, ...], source: str) -> NotifyEntry:
    lines = item.key_lines
    for key in ("host", "from", "to"):
        if key not in item:
            raise f.error(
                line,
                f"{where}.{key}",
                "missing",
                {
                    "host": "the SMTP server, like smtp.example.com",
                    "from": "the sender's address",
                    "to": "a recipient's address or a list of them",
                }[key],
            )
    host = item["host"]
    if not isinstance(host, str) or not re.match(r"^[A-Za-z0-9.\-:\[\]]+$", host):
        raise f.error(
            lines["host"], f"{where}.host", f"{quote(host)} is not a host name", "a name like smtp.example.com"
        )
    starttls = item.get("starttls", True)
    if not isinstance(starttls, bool):
        raise f.error(
            lines["starttls"],
            f"{where}.starttls",
            f"{quote(starttls)} is not true or false",
            "true (the default), or false for a server on this machine only",
        )
    port = item.get("port", 587 if starttls else 25)
    if not is_int(port) or not 0 < port < 65536:
        raise f.error(lines.get("port", line), f"{where}.port", f"{quote(port)} is not a port", "a number like 587")
    sender = item["from"]
    if not isinstance(sender, str) or not ADDRESS.match(sender.strip()):
        raise f.error(
            lines["from"],
            f"{where}.from",
            f"{quote(sender)} is not an email address",
            "an address like perf@example.com",
        )
    to = item["to"] if isinstance(item["to"], list) else [item["to"]]
    for address in to:
        if not isinstance(address, str) or not ADDRESS.match(address.strip()):
            raise f.error(
                lines["to"],
                f"{where}.to",
                f"{quote(address)} is not an email address",
                "an address like team@example.com, or a list of them",
            )
    username, password = _env(f, item, where, "username_env"), _env(f, item, where, "password_env")
    if (username is None) != (password is None):
        missing = "password_env" if password is None else "username_env"
        raise f.error(
            line, f"{where}.{missing}", "missing: a login needs both", "username_env and password_env, or neither"
        )
    if username and not starttls and not is_loopback(host):
        raise f.error(
            lines["starttls"],
            f"{where}.starttls",
            f"false would send the password to {host} in clear text",
            "starttls: true (a server beyond this machine must encrypt the login)",
        )
    ca_file = item.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise f.error(
            lines["ca_file"], f"{where}.ca_file", f"{quote(ca_file)} is not a path", "a PEM file of CA certificates"
        )
    return NotifyEntry(
        "email",
        on,
        host=host,
        port=port,
        sender=sender.strip(),
        to=tuple(a.strip() for a in to),
        username_env=username,
        password_env=password,
        starttls=starttls,
        ca_file=ca_file,
        source=source,
    )


def is_loopback(host: str) -> bool:
    return host.strip("[]") in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")

"""Untrusted text made inert before any markup: one line, bounded, links broken, each format's escapes after."""

from __future__ import annotations

import re

_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    s = _CONTROL.sub("", _BREAKS.sub(" ", str(text)))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def unlinked(text: str) -> str:
    """A zero-width space in ``scheme://`` and ``www.``, so that no client turns untrusted text into a link."""
    return re.sub(r"(?i)(www)\.", "\\1\u200b.", text.replace("://", ":\u200b//"))

"""Secrets never reach samples, reports or logs: query parameters and headers that carry them.

Applied by the recorder to request names and exception texts (cached per distinct name, so the
hot path pays a dict lookup) and by the CLI to every line of Locust's log.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# A query/form parameter is secret when its name, or one of its _-. separated parts, is one of
# these words: token, access_token, api_key, apikey, X-Amz-Signature, client_secret, password …
_SECRET_WORDS = {
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "sig",
    "auth",
    "session",
    "jwt",
    "apikey",
    "accesstoken",
    "authtoken",
    "sessionid",
    "credential",
    "credentials",
    "passphrase",
    "otp",
}
_PARAM = re.compile(r"((?:^|[?&;#\s])([\w.\-]+)=)([^&;#\s\"'<>]*)")
# header lines or reprs: Authorization: Bearer x, Cookie: a=b, Set-Cookie, X-Api-Key: x, Proxy-Authorization
_HEADER = re.compile(
    r"(?i)((?:proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)(\"?'?\s*[:=]\s*\"?'?)"
    r"([^\"'\r\n,}]+)"
)
# credentials in URLs: scheme://user:password@host
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)([^@\s/]+)(@)")
_CACHE_MAX = 20_000


def _is_secret(param: str) -> bool:
    p = param.lower()
    return p in _SECRET_WORDS or any(part in _SECRET_WORDS for part in re.split(r"[_.\-]", p))


def _param(m: re.Match) -> str:
    return m.group(1) + REDACTED if _is_secret(m.group(2)) and m.group(3) else m.group(0)


def redact(text: str) -> str:
    """``text`` with secret values replaced by ``[redacted]``; unchanged when it has none."""
    if "=" in text:
        text = _PARAM.sub(_param, text)
    if ":" in text or "=" in text:
        text = _HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    return text


class NameRedactor:
    """Memoised :func:`redact` for request names, which repeat; bounded so random URLs can't grow it."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        out = self._cache.get(name)
        if out is None:
            out = redact(name) if ("=" in name or "@" in name) else name
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[name] = out
        return out

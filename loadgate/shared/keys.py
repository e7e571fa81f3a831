"""The shared worker key (``--worker-key FILE`` or ``$LOADGATE_WORKER_KEY``) and where a bind needs one.

No zmq here: this runs in the CLI process. The key only travels to the Locust children, in their
environment, where :mod:`loadgate.plugin.worker_auth` turns it into CURVE key pairs.
"""

from __future__ import annotations

import ipaddress
import os

from loadgate.errors import ConfigError

ENV_WORKER_KEY = "LOADGATE_WORKER_KEY"
MIN_KEY_CHARS = 32  # 'openssl rand -hex 32' gives 64; a short secret would make the channel guessable
_HOW = "make one with 'openssl rand -hex 32' and give master and workers the same"


def load_worker_key(path: str | None, environ: dict | None = None) -> str | None:
    """The key of ``--worker-key FILE``, else ``$LOADGATE_WORKER_KEY``, else None; ConfigError if too short."""
    env = os.environ if environ is None else environ
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                key, where = f.read().strip(), f"--worker-key {path}"
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"--worker-key {path}: cannot read it ({getattr(e, 'strerror', None) or e}); {_HOW}"
            ) from None
    else:
        key, where = (env.get(ENV_WORKER_KEY) or "").strip(), f"${ENV_WORKER_KEY}"
        if not key:
            return None
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"{where}: the worker key has {len(key)} characters, expected at least {MIN_KEY_CHARS}; {_HOW}"
        )
    return key


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``; any other name or address (0.0.0.0 too) reaches beyond this machine."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def worker_auth(bind_host: str | None, key: str | None, insecure: bool) -> str:
    """How the master's channel is protected: ``curve`` (a key), ``loopback`` or ``insecure`` (allowed by flag).

    A bind beyond loopback without a key and without ``--insecure-workers`` is a ConfigError."""
    if key:
        return "curve"
    if bind_host is None or is_loopback(bind_host):
        return "loopback"
    if not insecure:
        raise ConfigError(
            f"--master-bind {bind_host}: listening beyond loopback lets any process that reaches the "
            f"port feed samples into the run; give master and workers a shared key with --worker-key "
            f"FILE or ${ENV_WORKER_KEY} ({_HOW}), or accept the risk with --insecure-workers"
        )
    return "insecure"


INSECURE_NOTE = (
    "workers joined over an unauthenticated, unencrypted channel (--insecure-workers): any process "
    "that reached the master's port could have fed samples into this run"
)

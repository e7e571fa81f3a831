"""Ed25519 keys for signing a run's manifest: load them, sign a digest, check a signature.

Ed25519 rather than HMAC: the public key checks a signature without being able to make one, so an
auditor (or a pipeline that only verifies) never holds the secret. Keys are PEM files as OpenSSL
writes them (``openssl genpkey -algorithm ed25519``; ``openssl pkey -pubout`` for the public half).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from loadgate.errors import ConfigError

ENV_SIGNING_KEY = "LOADGATE_SIGNING_KEY"
ALGORITHM = "ed25519"
_HOW = (
    "create one with 'openssl genpkey -algorithm ed25519 -out signing.pem' "
    "(public half: 'openssl pkey -in signing.pem -pubout -out signing.pub')"
)


@dataclass(frozen=True)
class SigningKey:
    """A private key and where it came from (a file path or the environment variable), for messages."""

    key: Ed25519PrivateKey
    source: str

    @property
    def public_raw(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)


def key_id(public_raw: bytes) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _private_from_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: not an unencrypted PEM private key ({e}); {_HOW}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{source}: a {type(key).__name__.replace('_', '')} key, expected Ed25519; {_HOW}")
    return key


def load_signing_key(path: str | None, environ: dict[str, Any] | None = None) -> SigningKey | None:
    """The key of ``--signing-key FILE``, else PEM text in ``$LOADGATE_SIGNING_KEY``, else None (unsigned)."""
    env = os.environ if environ is None else environ
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ConfigError(f"--signing-key {path}: cannot read it ({e.strerror}); {_HOW}") from None
        return SigningKey(_private_from_pem(data, f"--signing-key {path}"), path)
    text = (env.get(ENV_SIGNING_KEY) or "").strip()
    if not text:
        return None
    if not text.startswith("-----BEGIN"):
        raise ConfigError(
            f"${ENV_SIGNING_KEY}: expected the PEM text of an Ed25519 private key "
            "('-----BEGIN PRIVATE KEY-----…'); for a key file use --signing-key FILE"
        )
    return SigningKey(_private_from_pem(text.encode(), f"${ENV_SIGNING_KEY}"), f"${ENV_SIGNING_KEY}")


def load_public_key(path: str) -> Ed25519PublicKey:
    """A PEM public key (``--public-key FILE``); a private key file is accepted too (its public half)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"--public-key {path}: cannot read it ({e.strerror})") from None
    if b"PRIVATE KEY" in data:
        return _private_from_pem(data, f"--public-key {path}").public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--public-key {path}: not a PEM public key ({e}); {_HOW}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"--public-key {path}: not an Ed25519 public key; {_HOW}")
    return key


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(key: SigningKey, digest: str) -> dict[str, Any]:
    """The signature block of a manifest: the Ed25519 signature of the digest's hex text."""
    return {
        "algorithm": ALGORITHM,
        "key_id": key.key_id,
        "public_key": base64.b64encode(key.public_raw).decode(),
        "value": base64.b64encode(key.key.sign(digest.encode())).decode(),
    }


def signature_holds(block: dict[str, Any], digest: str, public: Ed25519PublicKey | None) -> tuple[bool, str]:
    """(holds, key id) of a signature block: checked with ``public`` if given, else with the key it names."""
    try:
        named = base64.b64decode(block["public_key"], validate=True)
        value = base64.b64decode(block["value"], validate=True)
        key = public if public is not None else Ed25519PublicKey.from_public_bytes(named)
    except (KeyError, TypeError, ValueError):
        return False, str(block.get("key_id") if isinstance(block, dict) else "?")
    try:
        key.verify(value, digest.encode())
    except InvalidSignature:
        return False, key_id(public_raw(key))
    return True, key_id(public_raw(key))

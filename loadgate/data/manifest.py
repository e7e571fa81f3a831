"""The manifest at the end of run.json: the SHA-256 of every other file of the run directory, and who rewrote what.

Schema ``loadgate.manifest/1``::

    "audit": [{"command": "loadgate gate …", "at": 1.7e9, "by": "ci@runner-7", "rewrote": ["verdict.json", …],
               "found": {"verdict.json": "changed"}, "signed_by": "3f2a…" | null}],     (before the manifest)
    "manifest": {"schema": "loadgate.manifest/1", "algorithm": "sha256",
                 "files": {"samples.parquet": HEX, …},      every file but run.json, report.html included
                 "run_json": HEX,                           run.json's content without "manifest", canonical JSON
                 "evidence": HEX,                           files but report.html + run_json: shown in the report
                 "digest": HEX,                             files + run_json: what the signature signs
                 "written": 1.7e9, "signature": {...} | null}

``evidence`` exists because a report cannot contain the hash of a manifest that lists its own hash:
the report shows ``evidence``, the manifest adds the report's hash, and ``digest`` covers both.
A writer that rewrites files seals in two steps (:class:`Sealer`): it notes what no longer matched
the old manifest *before* touching anything, writes its files, then seals, so that a re-seal never
launders an edit: ``found`` records it and :func:`verify` keeps reporting edits to files the writer
did not itself regenerate.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Mapping, Sequence

from loadgate.data import rundir
from loadgate.data.run_doc import RunDoc, read_run, write_run
from loadgate.data.signing import SigningKey, sign, signature_holds
from loadgate.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEMA = "loadgate.manifest/1"
KEY: Final = "manifest"
AUDIT: Final = "audit"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_json_digest(run: Mapping[str, Any]) -> str:
    """SHA-256 of run.json's content other than the manifest (canonical JSON: key order and spacing don't count)."""
    return _sha(canonical({k: v for k, v in run.items() if k != KEY}))


def file_hashes(run_dir: str, cache: dict[str, Any] | None = None) -> dict[str, str]:
    """Every file of the run directory (sub-folders included) but run.json -> its SHA-256.

    ``cache`` (path -> (size, mtime_ns, hash)) lets one writer hash an unchanged file once, not at each of
    its steps: samples.parquet of a soak test is gigabytes, and only the outputs change between the steps."""
    out = {}
    for root, dirs, names in os.walk(run_dir):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, run_dir).replace(os.sep, "/")
            if rel == rundir.RUN:
                continue
            st = os.stat(path)
            hit = cache.get(rel) if cache is not None else None
            if hit is not None and hit[:2] == (st.st_size, st.st_mtime_ns):
                out[rel] = hit[2]
                continue
            out[rel] = rundir.sha256_file(path)
            if cache is not None:
                cache[rel] = (st.st_size, st.st_mtime_ns, out[rel])
    return out


def digests(files: dict[str, str], run_json: str) -> tuple[str, str]:
    """(evidence, digest): without and with report.html."""
    evidence = _sha(canonical({"files": {k: v for k, v in files.items() if k != rundir.REPORT}, "run_json": run_json}))
    return evidence, _sha(canonical({"files": files, "run_json": run_json}))


def differences(recorded: dict[str, str], actual: dict[str, str]) -> dict[str, str]:
    """file -> ``changed``, ``missing`` or ``added``, for every file that does not match."""
    out = {}
    for name in sorted(set(recorded) | set(actual)):
        if name not in actual:
            out[name] = "missing"
        elif name not in recorded:
            out[name] = "added"
        elif recorded[name] != actual[name]:
            out[name] = "changed"
    return out


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class Sealer:
    """Re-seal a run directory around a command that rewrites some of its files.

    ``Sealer(run_dir, command, key)`` before writing anything; ``stage(rewrote)`` after every file but the
    report (returns what the report shows); ``close()`` last, which writes the manifest into run.json.
    """

    def __init__(self, run_dir: str, command: Sequence[str], key: SigningKey | None) -> None:
        self.run_dir, self.command, self.key = run_dir, " ".join(command), key
        run = read_run(run_dir)
        previous = run.get(KEY)
        self.found: dict[str, str] = {}
        self._cache: dict[str, Any] = {}
        if isinstance(previous, dict) and isinstance(previous.get("files"), dict):
            self.found = differences(previous["files"], file_hashes(run_dir, self._cache))
            if previous.get("run_json") != run_json_digest(run):
                self.found[rundir.RUN] = "changed"
        self._run: RunDoc | None = None
        self._original = run

    def abort(self) -> None:
        """The command failed after :meth:`stage`: run.json back as it was (its manifest and audit log)."""
        if self._run is not None:
            write_run(self.run_dir, self._original)
            self._run = None

    def stage(self, rewrote: Sequence[str], pending: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """Add this command to run.json's audit log; returns {"evidence", "signed_by"} for the report.

        ``pending``: files not written yet (name -> their bytes), hashed as they will be: the verdict files
        are written last, once the verdict is final, yet the report shows the evidence that covers them."""
        run = read_run(self.run_dir)
        run.pop(KEY, None)
        entry = {
            "command": self.command,
            "at": time.time(),
            "by": _who(),
            "rewrote": sorted(rewrote),
            "signed_by": self.key.key_id if self.key else None,
        }
        if self.found:
            entry["found"] = self.found
        run[AUDIT] = [*(run.get(AUDIT) or []), entry]
        write_run(self.run_dir, run)  # no manifest until close(): honest if we die
        self._run = run
        files = {**file_hashes(self.run_dir, self._cache), **{n: _sha(b) for n, b in (pending or {}).items()}}
        evidence, _ = digests(dict(sorted(files.items())), run_json_digest(run))
        return {"evidence": evidence, "signed_by": entry["signed_by"], "audit": run[AUDIT]}

    def close(self) -> dict[str, Any]:
        """Hash every file, sign, and write the manifest as run.json's last key. Returns the manifest."""
        if self._run is None:
            self.stage([])
        assert self._run is not None
        run = self._run.copy()
        files = file_hashes(self.run_dir, self._cache)
        body = run_json_digest(run)
        evidence, digest = digests(files, body)
        manifest = {
            "schema": SCHEMA,
            "algorithm": "sha256",
            "files": files,
            "run_json": body,
            "evidence": evidence,
            "digest": digest,
            "written": time.time(),
            "signature": sign(self.key, digest) if self.key else None,
        }
        run[KEY] = manifest
        write_run(self.run_dir, run)
        return manifest


def unfinished(run_dir: str, run: dict[str, Any]) -> str | None:
    """Why a run directory without a manifest is one whose loadgate was stopped before sealing it, or None."""
    if run.get("end") is None:
        return "run.json has no end: the loadgate running it was killed"
    for name in (rundir.STREAM, rundir.RECORDER_META):
        if os.path.exists(os.path.join(run_dir, name)):
            return f"{name} was never merged into the run's files: the loadgate running it stopped first"
    try:
        with open(os.path.join(run_dir, rundir.VERDICT), encoding="utf-8") as f:
            reasons = json.load(f).get("reasons") or []
    except (OSError, ValueError, AttributeError):
        return "it has no verdict.json: the loadgate running it stopped before the verdict"
    if any("no verdict was reached" in str(r) for r in reasons):
        return "its analysis was interrupted: " + str(reasons[0]).split(":")[0]
    return None


@dataclass(frozen=True)
class Verification:
    """What ``loadgate verify`` found: ``problems`` empty means intact."""

    run_dir: str
    problems: tuple[str, ...]
    files: int = 0
    evidence: str | None = None
    digest: str | None = None
    signed_by: str | None = None  # key id of a signature that holds
    audit: tuple[dict[str, Any], ...] = field(default=())


# Over the size/complexity limit (noqa): one check per manifest problem, each reported.
def verify(run_dir: str, public_key: Ed25519PublicKey | None = None) -> Verification:  # noqa: C901
    """Recompute the manifest of ``run_dir``; ConfigError when it is not a run directory."""
    path = os.path.join(run_dir, rundir.RUN)
    if not os.path.isdir(run_dir) or not os.path.isfile(path):
        raise ConfigError(
            f"{run_dir}: not a run directory (no {rundir.RUN}); pass a folder written by "
            "'loadgate run', e.g. reports/20260101T120000Z-REQ-PERF-001"
        )
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        return Verification(run_dir, (f"{rundir.RUN}: changed: no longer valid JSON ({e})",))
    manifest = run.get(KEY) if isinstance(run, dict) else None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        why = unfinished(run_dir, run) if isinstance(run, dict) else None
        if why:
            raise ConfigError(
                f"{run_dir}: the run did not finish ({why}), so it has no manifest to verify; run "
                f"'loadgate gate {run_dir}' to analyse, gate and seal what it recorded"
            )
        return Verification(
            run_dir,
            (
                f"{rundir.RUN}: has no manifest: the run was written by a loadgate "
                "before 0.2, or the manifest was removed",
            ),
        )
    problems = [
        f"{name}: {what}" + (" after the manifest was written" if what == "added" else "")
        for name, what in differences(manifest["files"], file_hashes(run_dir)).items()
    ]
    body = run_json_digest(run)
    if body != manifest.get("run_json"):
        problems.append(f"{rundir.RUN}: changed (its content besides the manifest)")
    evidence, digest = digests(manifest["files"], manifest.get("run_json") or "")
    if (evidence, digest) != (manifest.get("evidence"), manifest.get("digest")):
        problems.append(f"{rundir.RUN}: changed: the manifest's digest does not match its own file list")
    signed_by = None
    block = manifest.get("signature")
    if isinstance(block, dict):
        holds, kid = signature_holds(block, str(manifest.get("digest")), public_key)
        if holds:
            signed_by = kid
        elif public_key is not None and kid != block.get("key_id"):
            problems.append(f"signature: made with key {block.get('key_id')}, not with the --public-key {kid}")
        else:
            problems.append(f"signature: does not hold for key {kid}: the manifest was edited after it was signed")
    elif public_key is not None:
        problems.append("signature: the manifest is not signed, but --public-key expects a signature")
    audit = tuple(e for e in run.get(AUDIT) or [] if isinstance(e, dict))
    for entry in audit:
        for name, what in sorted((entry.get("found") or {}).items()):
            if name not in (entry.get("rewrote") or []):
                problems.append(
                    f"{name}: was {what} before '{entry.get('command')}' by {entry.get('by')} re-sealed "
                    "the run; the manifest has covered the edit since"
                )
    return Verification(
        run_dir,
        tuple(problems),
        len(manifest["files"]),
        manifest.get("evidence"),
        manifest.get("digest"),
        signed_by,
        audit,
    )

"""The run directory: its files, and run.json (what ran, where, when, with which inputs)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from loadgate._version import __version__
from loadgate.errors import ConfigError, RunError

SAMPLES = "samples.parquet"
RUN = "run.json"
SUMMARY = "summary.json"
VERDICT = "verdict.json"
JUNIT = "junit.xml"
SUMMARY_MD = "summary.md"
REPORT = "report.html"
LOCUST_LOG = "locust.log"
STREAM = "samples.arrows"  # the recorder's crash-safe stream, turned into SAMPLES after the run
RECORDER_META = "recorder.json"  # what the recorder saw, merged into RUN after the run (data.recorder_report)
PROGRESS = "progress.json"  # the recorder's live view, read by the CLI during the run
CHILD = "child.json"  # the Locust child's settings and the live view's alert rules (shared.child)
CAPACITY = "capacity.json"  # loadgate capacity: the search's result (loadgate.capacity/1)
CAPACITY_CONTROL = "capacity.control.json"  # capacity: the users the CLI asks the Locust shape to hold
CAPACITY_STATE = "capacity.state.json"  # capacity: what the shape holds, with the generators' CPU
RESERVE = ".reserve"  # room the recorder keeps, released when the disk fills (see reserve_space)
RESERVE_MAX = 1 << 20


def new_run_dir(out: str, first_requirement: str, now: float) -> str:
    """Create ``<out>/<UTC time>-<first requirement>/``; an unwritable ``out`` is a ConfigError."""
    stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = os.path.join(out, f"{stamp}-{first_requirement}")
    path, n = base, 1
    try:
        os.makedirs(out, exist_ok=True)
        while True:
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                n += 1
                path = f"{base}-{n}"
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(
            f"--out {out}: cannot create the run directory ({e.strerror}); choose a writable folder with --out DIR"
        ) from None
    return path


def write_json(path: str, data: Any, allow_nan: bool = False) -> None:
    """Write JSON atomically (temp file + rename), so a reader never sees half a file."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, allow_nan=allow_nan)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:  # a full disk, a signal: no half-written temp file left in the run directory
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def reserve_space(run_dir: str, most: int = RESERVE_MAX) -> bool:
    """Set aside up to ``most`` bytes (a quarter of the free space at most) in a file of the run directory.

    When the disk fills during the run, :func:`release_space` gives that room back, so that the recorder
    can still write what it counted (recorder.json) and the CLI what was lost (run.json): a full disk
    must not also hide how full. Returns whether the room was set aside (not on a nearly full disk)."""
    path = os.path.join(run_dir, RESERVE)
    try:
        size = min(most, shutil.disk_usage(run_dir).free // 4) // 4096 * 4096
        if size <= 0:
            return False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        return True
    except OSError:
        release_space(run_dir)
        return False


def release_space(run_dir: str) -> None:
    """Give back the room :func:`reserve_space` set aside (no error if there is none)."""
    try:
        os.remove(os.path.join(run_dir, RESERVE))
    except OSError:
        pass


def write_json_or_less(path: str, data: dict[str, Any], drop: tuple[str, ...], allow_nan: bool = False) -> None:
    """:func:`write_json`; on a disk too full for it, once more without the keys ``drop`` (bulky series),
    so that the counts at least are written. OSError if even that fails."""
    try:
        write_json(path, data, allow_nan)
    except OSError:
        write_json(path, {k: v for k, v in data.items() if k not in drop}, allow_nan)


def read_json(run_dir: str, name: str) -> dict[str, Any]:
    path = os.path.join(run_dir, name)
    try:
        with open(path) as f:
            doc: dict[str, Any] = json.load(f)
            return doc
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing; {run_dir} is not a complete run directory "
            "(re-run 'loadgate run', or point at a folder that has it)"
        ) from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path}:{e.lineno}: not valid JSON ({e.msg}); the file was damaged: re-run 'loadgate run'"
        ) from None


def check_run_dir(run_dir: str) -> None:
    if not os.path.isdir(run_dir):
        raise ConfigError(
            f"{run_dir}: no such run directory; pass a folder written by 'loadgate run' "
            "(e.g. reports/20260101T120000Z-REQ-PERF-001)"
        )


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit(cwd: str = ".") -> dict[str, Any] | None:
    """The commit of the working directory and whether it has uncommitted changes, if it is a repo."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, Any]:
    def v(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "loadgate": __version__,
        "locust": v("locust"),
        "python": platform.python_version(),
        "pandas": v("pandas"),
        "numpy": v("numpy"),
        "pyarrow": v("pyarrow"),
    }


def finalize_samples(run_dir: str) -> int:
    """The recorder's stream -> samples.parquet; on a write error the stream is kept and named."""
    stream = os.path.join(run_dir, STREAM)
    parquet = os.path.join(run_dir, SAMPLES)
    from loadgate.data.samples import (
        finalize_stream,  # pyarrow: only when there is a stream
    )

    try:
        rows = finalize_stream(stream, parquet)
    except OSError as e:
        raise RunError(
            f"{parquet}: cannot write ({e.strerror or e}); the samples recorded are kept in {stream}: "
            f"free some space, then run 'loadgate gate {run_dir}'"
        ) from None
    os.remove(stream)
    return rows


DISK_FULL = "disk full"


def write_error_problem(recorder: Mapping[str, Any], kept: int) -> str:
    """The problem of a run whose recorder could not write every sample: how many of the requests Locust
    counted were lost (Locust's count less the ``kept`` samples; the recorder's own count without Locust's)."""
    error, counted = str(recorder.get("write_error")), recorder.get("locust_requests")
    kind = DISK_FULL if "space" in error.lower() or "quota" in error.lower() else "disk error"
    return (
        f"{kind}: {error}; {samples_lost(recorder, kept)} of the {counted if counted is not None else '?'} "
        f"requests Locust counted were lost ({kept} samples kept) and the run was stopped early"
    )


def samples_lost(recorder: Mapping[str, Any], kept: int) -> int:
    counted = recorder.get("locust_requests")
    return counted - kept if counted is not None else int(recorder.get("samples_dropped") or 0)

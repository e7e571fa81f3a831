"""The run directory: its files, and run.json (what ran, where, when, with which inputs)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from loadgate import __version__
from loadgate.errors import ConfigError, RunError

SAMPLES = "samples.parquet"
RUN = "run.json"
SUMMARY = "summary.json"
VERDICT = "verdict.json"
JUNIT = "junit.xml"
SUMMARY_MD = "summary.md"
REPORT = "report.html"
LOCUST_LOG = "locust.log"
STREAM = "samples.arrows"          # the recorder's crash-safe stream, turned into SAMPLES after the run
RECORDER_META = "recorder.json"    # what the recorder saw, merged into RUN after the run
PROGRESS = "progress.json"         # the recorder's live view, read by the CLI during the run
RULES = "rules.json"               # alert rules handed to the recorder for the live view and aborts
CAPACITY = "capacity.json"         # loadgate capacity: the search's result (loadgate.capacity/1)
CAPACITY_CONTROL = "capacity.control.json"  # capacity: the users the CLI asks the Locust shape to hold
CAPACITY_STATE = "capacity.state.json"      # capacity: what the shape holds, with the generators' CPU


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
        raise ConfigError(f"--out {out}: cannot create the run directory ({e.strerror}); "
                          "choose a writable folder with --out DIR") from None
    return path


def write_json(path: str, data: Any, allow_nan: bool = False) -> None:
    """Write JSON atomically (temp file + rename), so a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, allow_nan=allow_nan)
        f.write("\n")
    os.replace(tmp, path)


def read_json(run_dir: str, name: str) -> dict:
    path = os.path.join(run_dir, name)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; {run_dir} is not a complete run directory "
                          "(re-run 'loadgate run', or point at a folder that has it)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid JSON ({e.msg}); "
                          "the file was damaged: re-run 'loadgate run'") from None


def check_run_dir(run_dir: str) -> None:
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{run_dir}: no such run directory; pass a folder written by 'loadgate run' "
                          "(e.g. reports/20260101T120000Z-REQ-PERF-001)")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit(cwd: str = ".") -> dict | None:
    """The commit of the working directory and whether it has uncommitted changes, if it is a repo."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    def v(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None
    return {"loadgate": __version__, "locust": v("locust"), "python": platform.python_version(),
            "pandas": v("pandas"), "numpy": v("numpy"), "pyarrow": v("pyarrow")}


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
        raise RunError(f"{parquet}: cannot write ({e.strerror or e}); every recorded sample is kept in {stream}: "
                       f"free some space, then run 'loadgate gate {run_dir}'") from None
    os.remove(stream)
    return rows


def recover_unfinished(run_dir: str, run: dict) -> dict:
    """``run`` (run.json) as the recorder saw it, when the loadgate that ran it was killed before it could
    write the end of the run: run.json then has no ``end``, and ``recorder.json`` (written by Locust as it
    stopped) has the times and counts. The run is marked interrupted, so its verdict is inconclusive and
    says why; its samples are gated as recorded. A finished run comes back unchanged."""
    path = os.path.join(run_dir, RECORDER_META)
    if run.get("end") is not None or not os.path.exists(path):
        return run
    try:
        with open(path) as f:
            seen = json.load(f)
    except (OSError, json.JSONDecodeError):
        return run
    merged = {**run, **{k: seen[k] for k in ("start", "ramp_up_done", "end", "users_reached") if seen.get(k) is not None}}
    merged["interrupted"] = (f"the run did not finish: the loadgate process running it ended without writing the "
                             f"run's end (killed?), and Locust stopped ({seen.get('stop_reason') or 'reason unknown'}); "
                             f"gated on the {seen.get('samples_recorded', 0)} samples it recorded")
    return merged

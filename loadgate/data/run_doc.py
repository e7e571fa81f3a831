"""``run.json`` (schema ``loadgate.run/1``): what ran, where, when, with which inputs, and what the
recorder saw; its shape (:class:`RunDoc`), its one reader and its one writer.

It is written in steps: when the run starts (the run's settings, ``end`` still None), when it ends (the
recorder's report merged in by ``loadgate.run.collect.collect``), by the notifications (``notifications``)
and last by the manifest (``manifest``). Every step reads it with :func:`read_run` and writes it with
:func:`write_run`.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict, cast

from loadgate.data import rundir
from loadgate.data.recorder_report import read_recorder_report

SCHEMA = "loadgate.run/1"


class _Settings(TypedDict):
    """Written when the run starts."""

    schema: str
    requirements: list[str]
    users: int
    spawn_rate: float
    duration: float | None  # seconds at full load; a web UI test's: how long it ran
    warmup: float
    host: str
    embedded_target: bool
    workers: int
    remote_workers: bool
    worker_auth: str
    notes: list[str]  # facts every reader must see that change no status
    strict: bool
    start: float  # epoch seconds
    ramp_up_done: float | None
    end: float | None  # None until the run ended: a run.json without it was not finished
    versions: dict[str, str | None]
    git: dict[str, Any] | None  # commit, dirty
    command_line: list[str]
    cwd: str
    scenario_files: dict[str, str]  # path -> sha256
    threshold_files: dict[str, str]
    options: dict[str, Any]  # the run's options as given (loadgate.run.options.RunOptions)


class RunDoc(_Settings, total=False):
    """The whole ``run.json``. The keys below are added as the run goes (``titles`` and ``tasks`` at the
    start, the recorder's at the end) or only for some runs (``mode``, ``interrupted``, ``arrival``, ``source``)."""

    titles: dict[str, str]  # requirement -> its threshold file's title
    tasks: dict[str, Any]  # requirement -> the scenario tasks tagged with it
    mode: str  # "ui" for a web UI test
    spawning_complete: float | None  # a web UI test: when Locust finished spawning
    locust_exit_code: int | None
    stop_reason: str | None
    interrupted: str | None  # why the run did not finish (SIGINT/SIGTERM, a loadgate killed): inconclusive
    aborted: str | None  # abort_on_fail stopped it: fail
    cpu: dict[str, Any] | None  # the load generators' CPU samples, per worker
    paced: bool | None
    schedule: dict[str, Any] | None
    users_reached: int | None
    samples: int
    locust_requests: int | None
    locust_failures: int | None
    unanswered: dict[str, Any] | None
    samples_lost: int | None
    write_error: str | None
    worker_counts: dict[str, Any] | None
    refused_workers: list[Any]
    problems: list[str]  # each makes the verdict at least inconclusive
    arrival: dict[str, Any]  # an arrival shape's schedule per requirement (what the recorder counted)
    source: dict[str, Any]  # an imported run: the tool, its version, the file, its SHA-256 (loadgate import)
    notifications: list[dict[str, Any]]  # loadgate.notify: what was sent, to which kind of target
    audit: list[dict[str, Any]]  # loadgate.data.manifest: each command that rewrote the directory
    manifest: dict[str, Any]  # loadgate.data.manifest: written last


def read_run(run_dir: str) -> RunDoc:
    """``run_dir``'s run.json; ConfigError (naming the file and the fix) when missing or not JSON."""
    return cast(RunDoc, rundir.read_json(run_dir, rundir.RUN))


def write_run(run_dir: str, run: RunDoc) -> None:
    """Write ``run_dir``'s run.json (atomically)."""
    rundir.write_json(os.path.join(run_dir, rundir.RUN), run)


def _samples_kept(run_dir: str) -> tuple[int, tuple[float, float] | None]:
    """(rows, (first, last) timestamp or None) of the run's samples.parquet, from its metadata alone."""
    from loadgate.data.row_groups import RowGroups, is_parquet  # pyarrow: only when gating

    path = os.path.join(run_dir, rundir.SAMPLES)
    if not is_parquet(path):
        return 0, None
    groups = RowGroups(path)
    ends = [r for r in groups.ranges("timestamp") if r is not None]
    return sum(groups.rows(i) for i in range(groups.count)), (
        (min(r[0] for r in ends), max(r[1] for r in ends)) if ends else None
    )


def recover_unfinished(run_dir: str, run: RunDoc) -> RunDoc:
    """``run`` (run.json) as the recorder saw it, when the loadgate that ran it was killed (or met a full
    disk) before it could write the end of the run: run.json then has no ``end``. ``recorder.json`` (written
    by Locust as it stopped) has the times and counts; without it, the window runs from run.json's start to
    the last sample. The run is marked interrupted, so its verdict is inconclusive and says why; its samples
    are gated as recorded, and samples the recorder could not write are stated. A finished run comes back
    unchanged."""
    if run.get("end") is not None:
        return run
    seen = read_recorder_report(run_dir)
    kept, span = _samples_kept(run_dir)
    if seen is None:
        start = run.get("start") or (span[0] if span else 0.0)
        end = max(span[1], start) if span else start
        warmup = run.get("warmup") or 0.0
        merged: RunDoc = {**run, "end": end, "ramp_up_done": None, "warmup": warmup if start + warmup < end else 0.0}
        merged["interrupted"] = (
            f"the run did not finish: the loadgate process running it ended without writing the "
            f"run's end, and Locust's record of the run ({rundir.RECORDER_META}) is missing "
            f"(killed, or a full disk?), so how many requests were not recorded is unknown; "
            f"gated on the {kept} samples kept, from run.json's start to the last sample "
            f"({end - start:.1f} s)"
        )
        return merged
    merged = {**run}
    for key in ("start", "ramp_up_done", "end", "users_reached"):
        if seen.get(key) is not None:
            merged[key] = seen[key]
    write_error = seen.get("write_error")
    why = "could not write" if write_error else "ended without writing"
    merged["interrupted"] = (
        f"the run did not finish: the loadgate process running it {why} the run's end "
        f"({'a full disk?' if write_error else 'killed?'}), and Locust stopped "
        f"({seen.get('stop_reason') or 'reason unknown'}); gated on the {kept} samples it recorded"
    )
    if write_error:
        merged["problems"] = [*(run.get("problems") or []), rundir.write_error_problem(seen, kept)]
        merged.update(
            {
                "samples": kept,
                "locust_requests": seen.get("locust_requests"),
                "write_error": write_error,
                "samples_lost": rundir.samples_lost(seen, kept),
            }
        )
    return merged

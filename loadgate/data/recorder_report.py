"""``recorder.json``: the recorder's report of what it saw, written inside Locust (local or master) when it
closes and merged into run.json by the CLI after the run (``loadgate.run.collect.collect``), or by a gate of
a run whose loadgate was killed (:func:`loadgate.data.run_doc.recover_unfinished`). Its shape, its one
writer and its one reader: the Locust process and the CLI both use them, so they sit in ``data/``.
"""

from __future__ import annotations

import json
import os
from typing import Any, TypedDict, cast

from loadgate.data import rundir

# the bulky series left out when the disk is too full to write the whole report: the counts matter more
BULKY = ("cpu", "schedule")


class _Seen(TypedDict):
    """What the recorder knows from the start (updated as the run goes)."""

    requirements: list[str]
    ramp_up_done: float | None
    start: float | None
    end: float | None
    stop_reason: str | None
    users_reached: int
    samples_recorded: int


class RecorderReport(_Seen, total=False):
    """The whole report; the keys below are added when the recorder closes (or as something happens)."""

    samples_dropped: int
    write_error: str | None  # the stream could not be written (a full disk): samples were lost
    locust_requests: int | None  # Locust's own counts, to say how many requests were not recorded
    locust_failures: int | None
    workers: dict[str, dict[str, Any]]  # worker (or "local") -> rows sent, received, lost
    cpu: dict[str, Any]  # worker (or "local") -> its CPU samples
    schedule: dict[str, Any]  # worker (or "local") -> its paced users' schedule counts
    paced: bool
    unhandled_exceptions: int
    exceptions: list[str]  # the first few, redacted
    unanswered: dict[str, Any]  # requests sent and never answered (loadgate.plugin.inflight)
    refused_workers: list[Any]  # workers the CURVE channel refused
    aborted: str | None  # abort_on_fail: the alert that stopped the run
    arrival: dict[str, Any]  # an arrival shape's schedule per requirement


def write_recorder_report(out_dir: str, report: RecorderReport) -> None:
    """Write ``out_dir``'s recorder.json (NaN allowed: CPU samples may hold one); on a disk too full for
    the whole report, without its bulky series. OSError if even that fails."""
    rundir.write_json_or_less(
        os.path.join(out_dir, rundir.RECORDER_META), cast(dict[str, Any], report), BULKY, allow_nan=True
    )


def read_recorder_report(run_dir: str) -> RecorderReport | None:
    """``run_dir``'s recorder.json; None when there is none, or it is damaged (Locust was killed while
    writing it): either way the recorder did not report."""
    try:
        with open(os.path.join(run_dir, rundir.RECORDER_META)) as f:
            return cast(RecorderReport, json.load(f))
    except (OSError, json.JSONDecodeError):
        return None

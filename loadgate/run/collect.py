"""After Locust stopped: the recorder's stream becomes samples.parquet, its report goes into run.json, and
the run's problems are listed (those every run has here; the driver adds its own, see
:meth:`loadgate.run.drivers.base.Driver.run_problems`)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Callable, Mapping

from loadgate.data import rundir
from loadgate.data.recorder_report import read_recorder_report
from loadgate.data.run_doc import write_run
from loadgate.errors import RunError
from loadgate.run.options import RunOptions
from loadgate.run.problems import worker_problems
from loadgate.run.record import RunRecord
from loadgate.shared.redact import redact

# The driver's problems of a run the recorder saw to its end: (record, options, recorder.json) -> problems
RunProblems = Callable[[RunRecord, RunOptions, dict], list[str]]


def collect(rec: RunRecord, opts: RunOptions, run_problems: RunProblems) -> None:
    """Stream -> Parquet, recorder.json -> run.json, and the run's problems.

    On a full disk the samples that could be kept stay in the stream (``loadgate gate`` converts it later):
    run.json and the error then say how many of the requests Locust counted were lost."""
    rundir.release_space(rec.run_dir)  # left behind by a Locust that could not close its recorder
    stream = os.path.join(rec.run_dir, rundir.STREAM)
    unwritten: RunError | None = None
    if os.path.exists(stream):
        try:
            rec.samples = rundir.finalize_samples(rec.run_dir)
        except RunError as e:  # no room for samples.parquet: count what the stream keeps
            from loadgate.data.samples import stream_rows  # pyarrow: only when there is a stream

            unwritten, rec.samples = e, stream_rows(stream)
    recorder = _recorder_report(rec.run_dir)
    _crash_problems(rec, opts, recorder)
    rec.aborted = recorder.get("aborted") or rec.aborted
    if recorder:
        _recorder_problems(rec, opts, recorder, run_problems)
    rec.meta.update(_from_recorder(rec, recorder))
    try:
        write_run(rec.run_dir, rec.meta)
    except OSError as e:
        raise RunError(
            f"{rec.run_dir}/{rundir.RUN}: cannot write ({e.strerror or e}); "
            + "; ".join([*rec.problems, _keep_note(rec, stream if unwritten else None)])
        ) from None
    for name in (rundir.RECORDER_META, rundir.PROGRESS):  # merged into run.json: no longer needed
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(rec.run_dir, name))
    if unwritten is not None:
        lost = [rundir.write_error_problem(recorder, rec.samples)] if recorder.get("write_error") else []
        raise RunError("; ".join([*lost, str(unwritten)])) from None


def _recorder_report(run_dir: str) -> dict:
    """recorder.json, the report the recorder writes when it closes; {} when it never did (or was cut short)."""
    return dict(read_recorder_report(run_dir) or {})


def _crash_problems(rec: RunRecord, opts: RunOptions, recorder: dict) -> None:
    """No recorder report: the workers never all came, or Locust died before its recorder closed."""
    log_tail = _tail(os.path.join(rec.run_dir, rundir.LOCUST_LOG))
    if not recorder and "Gave up waiting for workers to connect" in log_tail:
        rec.problems.append(
            f"only some of the {opts.expect_workers or opts.workers} workers connected within "
            f"{opts.worker_wait:g}s; start 'loadgate worker --master HOST:PORT' on each worker "
            "machine and check it can reach the master"
        )
    elif not recorder and not rec.interrupted:
        rec.problems.append(
            f"Locust crashed (exit code {rec.meta.get('locust_exit_code')}) before the "
            f"recorder could close; see {rundir.LOCUST_LOG}"
        )


def _from_recorder(rec: RunRecord, recorder: dict) -> dict:
    """run.json's fields that the recorder's report (or, without one, this process) fills in."""
    arrival = {"arrival": recorder["arrival"]} if recorder.get("arrival") else {}  # an open-model run's counts
    return {
        **arrival,
        "start": recorder.get("start") or rec.meta["start"],
        "ramp_up_done": recorder.get("ramp_up_done"),
        "end": recorder.get("end") or time.time(),
        "stop_reason": recorder.get("stop_reason") or rec.interrupted,
        "interrupted": rec.interrupted,
        "aborted": rec.aborted,
        "cpu": recorder.get("cpu"),
        "paced": recorder.get("paced"),
        "schedule": recorder.get("schedule"),
        "users_reached": recorder.get("users_reached"),
        "samples": rec.samples,
        "locust_requests": recorder.get("locust_requests"),
        "locust_failures": recorder.get("locust_failures"),
        "unanswered": recorder.get("unanswered"),
        "samples_lost": rundir.samples_lost(recorder, rec.samples) if recorder.get("write_error") else None,
        "write_error": recorder.get("write_error"),
        "worker_counts": recorder.get("workers"),
        "refused_workers": recorder.get("refused_workers") or [],
        "problems": rec.problems,
    }


def _keep_note(rec: RunRecord, stream: str | None) -> str:
    where = stream or os.path.join(rec.run_dir, rundir.SAMPLES)
    return (
        f"the {rec.samples} samples recorded are kept in {where}: free some space, then run "
        f"'loadgate gate {rec.run_dir}'"
    )


def _recorder_problems(rec: RunRecord, opts: RunOptions, recorder: dict, run_problems: RunProblems) -> None:
    """The problems of a run that the recorder saw to its end."""
    if recorder.get("write_error"):
        rec.problems.append(rundir.write_error_problem(recorder, rec.samples))
    rec.problems.extend(run_problems(rec, opts, recorder))  # the driver's: user count, generator load
    rec.problems.extend(worker_problems(recorder.get("workers") or {}, opts.allow_worker_loss))
    lost = (recorder.get("locust_requests") or 0) - rec.samples
    any_lost_worker = any((w or {}).get("lost") for w in (recorder.get("workers") or {}).values())
    if lost > 0 and not any_lost_worker and not recorder.get("write_error"):
        rec.problems.append(
            f"{lost} of {recorder['locust_requests']} requests Locust counted were not recorded as samples"
        )
    unanswered = recorder.get("unanswered") or {}
    if unanswered.get("requests"):  # failed samples already; the note names them for every reader (and why)
        rec.meta.setdefault("notes", []).append(unanswered_note(unanswered))
    if recorder.get("unhandled_exceptions"):
        first = (recorder.get("exceptions") or [""])[0]
        rec.problems.append(
            f"the scenario raised {recorder['unhandled_exceptions']} kind(s) of unhandled exception, first: {first}"
        )


def unanswered_note(unanswered: Mapping) -> str:
    """The requests still unanswered when the run stopped, most frequent first (at most 5 named)."""
    by_request = sorted((unanswered.get("by_request") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    named = ", ".join(f"{redact(name)} x{n}" for name, n in by_request[:5]) + (", ..." if len(by_request) > 5 else "")
    n = unanswered["requests"]
    return (
        f"{n} request{'s' if n != 1 else ''} had no response when the run stopped ({named}): recorded as failed "
        f"samples ('no response before the run stopped'), timed from their start or the window's"
    )


def _tail(path: str, size: int = 20000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""

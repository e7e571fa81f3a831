"""The summary of a run directory: its samples over its analysis window [ramp-up done + warmup, end]."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, cast

from loadgate.analysis.arrival import arrival_summary
from loadgate.analysis.schedule import SCHEDULE_COLUMNS, with_schedule
from loadgate.analysis.stalls import stuck_problem
from loadgate.analysis.summary import COLUMNS, DEFAULT_PERCENTILES, summarize
from loadgate.analysis.summary_doc import SummaryDoc
from loadgate.analysis.window import Window
from loadgate.data import rundir
from loadgate.data.open_samples import open_samples
from loadgate.data.run_doc import RunDoc
from loadgate.data.table_source import TableSource
from loadgate.data.samples import SCHEMA


def run_window(run: RunDoc) -> Window:
    """The analysis window of a run (run.json): [ramp-up done + warmup, end of run]."""
    start = run.get("ramp_up_done") or run.get("start") or 0.0
    end = run.get("end") or start
    return Window(start + (run.get("warmup") or 0.0), end)


def summarize_run(
    run_dir: str, run: RunDoc, percentiles: Iterable[float] = (), *, series: bool = True
) -> tuple[SummaryDoc, list[str]]:
    """The summary of a run directory's samples over its window (not written), and problems found;
    with the latency from the schedule and the stalls (:mod:`loadgate.analysis.schedule`), and for a run
    with an arrival shape, its schedule's counts in the window (:mod:`loadgate.analysis.arrival`).

    ``percentiles``: those some threshold needs, computed beside the default ones.
    """
    problems: list[str] = []
    path = os.path.join(run_dir, rundir.SAMPLES)
    if not os.path.exists(path) and os.path.exists(os.path.join(run_dir, rundir.STREAM)):
        rundir.finalize_samples(run_dir)  # a run whose Parquet could not be written (disk full) is recovered here
    qs = sorted(set(DEFAULT_PERCENTILES) | set(percentiles))
    if os.path.exists(path):  # one row group at a time: memory bounded whatever the run's length
        source = open_samples(path, [*COLUMNS, *SCHEDULE_COLUMNS])
    else:
        problems.append(f"{path} is missing: no samples to analyse")
        source = TableSource(SCHEMA.empty_table())
    window, reqs = run_window(run), run.get("requirements")
    summary = summarize(source, window, requirements=reqs, percentiles=qs, series=series)
    with_schedule(summary, source, window, requirements=reqs, percentiles=qs, series=series)
    arrival = arrival_summary(run, window)
    if arrival is not None:  # only a run with an open-model shape: every other summary stays as it was
        summary["arrival"] = arrival
    return cast(SummaryDoc, summary), [*problems, *_stuck(summary)]


def _stuck(summary: dict[str, Any]) -> list[str]:
    """Users stuck alone on one unanswered request: a problem of the run (its samples miss their requests)."""
    line = stuck_problem(summary.get("stuck_users") or [])
    return [line] if line else []

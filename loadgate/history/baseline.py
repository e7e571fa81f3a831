"""The baseline of a run: the run directory its regression thresholds and its comparison measure against.

``--baseline RUN_DIR`` names it; ``--baseline last-pass`` (the default when a threshold has
``regression:``) is the newest run in the ``--out`` folder's history that started before this one,
exited 0 and covered the same requirements. The gate gets the baseline's summary (for the relative
change) and, from :mod:`loadgate.history.compare`, the 95% interval of each change, so a regression threshold
fails only when the whole interval is beyond its limit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadgate.analysis.run_window import summarize_run
from loadgate.analysis.summary_doc import Stats, SummaryDoc, read_summary
from loadgate.data import rundir
from loadgate.data.run_doc import RunDoc, read_run
from loadgate.errors import ConfigError, LoadgateError
from loadgate.gate.status import Status
from loadgate.gate.thresholds import Threshold, ThresholdFile, required_percentiles
from loadgate.gate.verdict_doc import read_verdict
from loadgate.history import compare
from loadgate.history import store as history
from loadgate.history.compare_rows import load_pair

LAST_PASS = "last-pass"
COMPARISON = "comparison.json"  # the loadgate.compare/1 document of a run against its baseline


@dataclass(frozen=True)
class Baseline:
    """A chosen baseline run: where it is, its summary, and how it was chosen."""

    run_dir: str
    run_id: str
    summary: SummaryDoc
    how: str


def has_regression(files: Mapping[str, ThresholdFile]) -> bool:
    """Whether any threshold of ``files`` is relative to a baseline."""
    return any(t.regression is not None for f in files.values() for t in f.thresholds)


def check_spec(spec: str | None) -> None:
    """Reject a ``--baseline`` that is neither ``last-pass`` nor a run directory, before anything runs."""
    if spec is None or spec == LAST_PASS:
        return
    if not os.path.isdir(spec):
        raise ConfigError(
            f"--baseline {spec}: no such run directory; pass a folder written by 'loadgate run' or '{LAST_PASS}'"
        )
    if not os.path.isfile(os.path.join(spec, rundir.SUMMARY)):
        raise ConfigError(
            f"--baseline {spec}: not a run directory (no {rundir.SUMMARY}); "
            f"pass a folder written by 'loadgate run' or '{LAST_PASS}'"
        )
    read_summary(spec)  # damaged: say so now, before a run is spent


def _summary(run_dir: str, files: Mapping[str, ThresholdFile]) -> SummaryDoc:
    """The baseline's summary.json, recomputed from its samples if missing or lacking a needed percentile."""
    has_samples = os.path.isfile(os.path.join(run_dir, rundir.SAMPLES))
    if os.path.isfile(os.path.join(run_dir, rundir.SUMMARY)) or not has_samples:
        summary = read_summary(run_dir)  # neither file: its "missing" error names the folder
        have = set((summary.get("overall") or {}).get("response_time_ms") or {})
        if not has_samples or {f"p{q:g}" for q in required_percentiles(files.values())} <= have:
            return summary
    return summarize_run(run_dir, read_run(run_dir), required_percentiles(files), series=False)[0]


def resolve(
    spec: str | None, run_dir: str, run: RunDoc, files: Mapping[str, ThresholdFile], say: Callable[[str], None]
) -> Baseline | None:
    """The baseline for ``run_dir``: ``spec`` (a run directory or last-pass); None when there is none.

    ``spec`` None means last-pass if any threshold has ``regression:``, else no baseline.
    """
    if spec is None and not has_regression(files):
        return None
    if spec is not None and spec != LAST_PASS:
        check_spec(spec)
        if os.path.samefile(spec, run_dir):
            raise ConfigError(f"--baseline {spec}: is the run being gated; pass an earlier run directory")
        return Baseline(spec, os.path.basename(os.path.normpath(spec)), _summary(spec, files), "given")
    reqs = [r for r, f in files.items() if any(t.regression for t in f.thresholds)] or list(files)
    db = history.db_of_run(run_dir)
    if not os.path.isfile(db):
        return None
    try:
        found = history.passing_runs(
            db, reqs, before=run.get("start"), exclude=os.path.basename(os.path.normpath(run_dir))
        )
    except (sqlite3.Error, OSError, ConfigError) as e:
        say(f"loadgate: warning: cannot look up the last passing run ({e}); regression thresholds skipped")
        return None
    for rec in found:
        # the history moves with its --out folder: look next to it first, then where the run was written
        for where in (os.path.join(os.path.dirname(db), rec.run_id), rec.run_dir):
            if os.path.isfile(os.path.join(where, rundir.SUMMARY)):
                return Baseline(
                    where, rec.run_id, _summary(where, files), f"last passing run of {', '.join(reqs)} in {db}"
                )
    return None


def against(
    spec: str | None, run_dir: str, run: RunDoc, files: Mapping[str, ThresholdFile], say: Callable[[str], None]
) -> Against | None:
    """The run measured against its baseline (see :func:`resolve`), or None; says which baseline it took.

    A named baseline that cannot be used is a ConfigError (``run`` checks it before running, with
    :func:`check_spec`); a last passing run that cannot be read is a warning: the run's outputs come first.
    """
    try:
        base = resolve(spec, run_dir, run, files, say)
    except LoadgateError as e:
        if spec not in (None, LAST_PASS):
            raise
        say(f"loadgate: warning: baseline not used ({e}); regression thresholds skipped")
        return None
    if base is None:
        return None
    say(f"loadgate: baseline {base.run_id} ({base.how})")
    return Against(base, run_dir, say, [t.metric for tf in files.values() for t in tf.thresholds])


class Against:
    """A run measured against its baseline, from both runs' raw samples (each loaded at most once)."""

    def __init__(self, base: Baseline, run_dir: str, say: Callable[[str], None], metrics: Iterable[str] = ()) -> None:
        """``metrics``: the thresholds' metrics, so that the percentiles the gate asks about are read."""
        self.base, self.run_dir, self.say, self.metrics = base, run_dir, say, list(metrics)
        self.usable = all(os.path.isfile(os.path.join(d, rundir.SAMPLES)) for d in (base.run_dir, run_dir))
        self._runs: tuple[Any, Any] | None = None

    def _loaded(self) -> tuple[Any, Any] | None:
        if self._runs is None and self.usable:
            try:
                self._runs = load_pair(self.base.run_dir, self.run_dir, self.metrics)
            except LoadgateError as e:
                self.usable = False
                self.say(
                    f"loadgate: warning: cannot compare with the baseline's samples ({e}); regression "
                    "thresholds use the summaries' values without a confidence interval"
                )
        return self._runs

    def ci(self, t: Threshold, stats: Stats) -> tuple[float, float] | None:
        """For the gate: the 95% CI of a regression threshold's relative change (worse = up)."""
        if t.metric == "throughput" or not self.usable:
            return None
        runs = self._loaded()
        if runs is None:
            return None
        entry: Mapping[str, Any] = stats  # a request's STATS (with its type and name) when the threshold names one
        rtype, name = (entry.get("request_type"), entry.get("name")) if t.request else (None, None)
        return compare.regression_ci(*runs)(t.requirement, rtype, name, t.metric)

    def comparison(self) -> dict[str, Any] | None:
        """The ``loadgate.compare/1`` document of the run against its baseline; None without samples."""
        runs = self._loaded()
        return None if runs is None else compare.compare_loaded(*runs)


def write_comparison(run_dir: str, against: Against | None) -> dict[str, Any] | None:
    """Write ``comparison.json`` of the run against its baseline, or remove a stale one when there is none."""
    doc = against.comparison() if against is not None else None
    path = os.path.join(run_dir, COMPARISON)
    if doc is None:
        if os.path.exists(path):
            os.remove(path)
        return None
    rundir.write_json(path, doc)
    return doc


def last_capacity(run_dir: str, run: RunDoc) -> dict[str, Any] | None:
    """The capacity.json of the newest earlier ``loadgate capacity`` run in the same ``--out`` folder that
    covered the same requirements and passed: the baseline of a ``regression:`` on ``max_users``."""
    out, me = os.path.dirname(os.path.abspath(run_dir)), os.path.basename(os.path.abspath(run_dir))
    reqs = list(run.get("requirements") or ())
    for name in sorted(os.listdir(out), reverse=True):  # run directories sort by their UTC start
        if name >= me:
            continue
        path = os.path.join(out, name)
        try:
            doc = rundir.read_json(path, rundir.CAPACITY)
            verdict = read_verdict(path)
        except (ConfigError, OSError):
            continue
        if doc.get("requirements") == reqs and verdict["verdict"] == Status.PASS:
            return {**doc, "run_dir": path}
    return None

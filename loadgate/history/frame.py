"""The history for notebooks: ``loadgate.open_history(OUT_DIR)`` → one pandas row per run and requirement.

Columns: the run's record (run_id, run_dir, kind, requirement, started and ended as UTC timestamps,
users, verdict, exit_code, strict, baseline, git_commit, loadgate_version, recorded_at, git_dirty), then one
column per metric of the whole requirement as ``summary.json`` had it (requests, failures, error_rate,
throughput, min, mean, p50, p90, p95, p99, p99.9, max). Oldest first, so a trend plots left to right.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from loadgate.history import store

if TYPE_CHECKING:
    import pandas as pd

_RECORD = (
    "seq",
    "run_id",
    "run_dir",
    "kind",
    "started",
    "ended",
    "users",
    "verdict",
    "exit_code",
    "strict",
    "baseline",
    "git_commit",
    "loadgate_version",
    "recorded_at",
    "git_dirty",
)
_METRICS = (
    "requests",
    "failures",
    "error_rate",
    "throughput",
    "min",
    "mean",
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "max",
)


def open_history(out_dir: str | os.PathLike[str], *, all_records: bool = False) -> "pd.DataFrame":
    """The runs recorded in ``OUT_DIR/history.sqlite`` with their metrics, one row per run and requirement.

    A run re-evaluated by ``loadgate gate`` appears once, with its latest verdict and metrics;
    ``all_records=True`` keeps every record (``kind`` says 'run' or 'gate'). HistoryError (exit 2)
    when there is no history there.
    """
    import pandas as pd

    cols = ", ".join(f"r.{c}" for c in _RECORD)
    where = "" if all_records else " WHERE r.seq = (SELECT MAX(seq) FROM runs x WHERE x.run_id = r.run_id)"
    conn = store.open_existing(store.db_path(os.fspath(out_dir)))
    try:
        runs = pd.read_sql_query(
            f"SELECT {cols}, q.requirement FROM runs r JOIN run_requirements q ON q.seq = r.seq{where}"
            " ORDER BY r.started, r.seq",
            conn,
        )
        metrics = pd.read_sql_query(
            "SELECT seq, requirement, metric, value FROM metrics WHERE request_type IS NULL AND name IS NULL", conn
        )
    finally:
        conn.close()
    if metrics.empty:  # no summary metrics recorded (e.g. runs with no requests): the runs alone
        return runs.drop(columns="seq")
    wide = metrics.pivot_table(index=["seq", "requirement"], columns="metric", values="value", aggfunc="last")
    wide = wide.reindex(
        columns=[m for m in _METRICS if m in wide.columns] + sorted(c for c in wide.columns if c not in _METRICS)
    )
    wide.columns.name = None
    df = runs.merge(wide.reset_index(), on=["seq", "requirement"], how="left")
    for column in ("started", "ended", "recorded_at"):
        df[column] = pd.to_datetime(df[column], unit="s", utc=True)
    df["strict"] = df["strict"].astype(bool)
    df["git_dirty"] = df["git_dirty"].astype("boolean")  # null: not recorded (an older run, or no repository)
    for column in ("requests", "failures"):  # counts, stored as REAL beside the other metrics
        if column in df.columns:
            df[column] = df[column].round().astype("Int64")
    order = ["run_id", "requirement", *[c for c in df.columns if c not in ("run_id", "requirement", "seq")]]
    return df[order].reset_index(drop=True)

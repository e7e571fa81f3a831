"""The run history: ``history.sqlite`` in the ``--out`` folder, one record per run and per gate re-evaluation.

SQLite in WAL mode with a busy timeout, one ``BEGIN IMMEDIATE`` transaction per record, so concurrent
runs writing to the same folder queue instead of corrupting it. The schema version lives in
``PRAGMA user_version``; ``_MIGRATIONS[i]`` takes a database from version i to i + 1, each in its own
transaction, so an older database is upgraded in place the first time a newer loadgate opens it.

    runs              seq, run_id (the run directory's name), run_dir, kind ('run' | 'gate'),
                      requirements, started, ended, users, verdict, exit_code, strict, baseline,
                      git_commit, loadgate_version, recorded_at, git_dirty (schema 2: 1 when the working
                      tree had uncommitted changes, null when unknown)
    run_requirements  seq, requirement
    metrics           seq, requirement, request_type, name, metric, value
                      (request_type and name null: the whole requirement)
    thresholds        seq, requirement, metric, request, value, unit, status, target, alert, regression
    capacity          seq, release, dated, max_users, first_not_passing_users, at_least, inconclusive,
                      knee_users, throughput_at_max, max_throughput, cpu_per_user, memory_per_user, peak,
                      peak_unit, search_from, search_to (schema 3: a ``loadgate capacity`` run; see capacity_store.py),
                      quantity ('users' | 'rate'), max_rate, first_not_passing_rate (schema 4: a search over
                      arrival rate; search_from and search_to are then iterations/s)

A run re-evaluated by ``loadgate gate`` has several records; its latest one is its current verdict.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadgate.analysis.summary_doc import SummaryDoc
from loadgate.data.run_doc import RunDoc
from loadgate.errors import ConfigError
from loadgate.gate.verdict_doc import VerdictDoc

FILENAME = "history.sqlite"
TIMEOUT = 10.0  # seconds a writer waits for another one before giving up (with a warning)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1
        """CREATE TABLE runs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            run_dir TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('run', 'gate')),
            requirements TEXT NOT NULL,
            started REAL,
            ended REAL,
            users INTEGER,
            verdict TEXT NOT NULL,
            exit_code INTEGER NOT NULL,
            strict INTEGER NOT NULL DEFAULT 0,
            baseline TEXT,
            git_commit TEXT,
            loadgate_version TEXT,
            recorded_at REAL NOT NULL)""",
        "CREATE INDEX runs_by_run_id ON runs (run_id, seq)",
        """CREATE TABLE run_requirements (
            seq INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
            requirement TEXT NOT NULL,
            PRIMARY KEY (seq, requirement))""",
        "CREATE INDEX run_requirements_by_requirement ON run_requirements (requirement, seq)",
        """CREATE TABLE metrics (
            seq INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
            requirement TEXT,
            request_type TEXT,
            name TEXT,
            metric TEXT NOT NULL,
            value REAL)""",
        "CREATE INDEX metrics_by_seq ON metrics (seq, requirement)",
        """CREATE TABLE thresholds (
            seq INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
            requirement TEXT NOT NULL,
            metric TEXT NOT NULL,
            request TEXT,
            value REAL,
            unit TEXT,
            status TEXT NOT NULL,
            target TEXT,
            alert TEXT,
            regression TEXT)""",
        "CREATE INDEX thresholds_by_seq ON thresholds (seq, requirement)",
    ),
    (  # 1 -> 2: whether the run's working tree had uncommitted changes beside its commit
        "ALTER TABLE runs ADD COLUMN git_dirty INTEGER",
    ),
    (  # 2 -> 3: capacity runs (loadgate capacity), one row per record of such a run
        """CREATE TABLE capacity (
            seq INTEGER PRIMARY KEY REFERENCES runs (seq) ON DELETE CASCADE,
            release TEXT,
            dated REAL,
            max_users INTEGER,
            first_not_passing_users INTEGER,
            at_least INTEGER NOT NULL DEFAULT 0,
            inconclusive INTEGER NOT NULL DEFAULT 0,
            knee_users REAL,
            throughput_at_max REAL,
            max_throughput REAL,
            cpu_per_user REAL,
            memory_per_user REAL,
            peak REAL,
            peak_unit TEXT,
            search_from INTEGER,
            search_to INTEGER)""",
    ),
    (  # 3 -> 4: a search over arrival rate (loadgate capacity --arrival-rate) found a rate, not users
        "ALTER TABLE capacity ADD COLUMN quantity TEXT",
        "ALTER TABLE capacity ADD COLUMN max_rate REAL",
        "ALTER TABLE capacity ADD COLUMN first_not_passing_rate REAL",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_RUN_COLUMNS = (
    "seq",
    "run_id",
    "run_dir",
    "kind",
    "requirements",
    "started",
    "ended",
    "users",
    "verdict",
    "exit_code",
    "strict",
    "baseline",
    "recorded_at",
)


class HistoryError(ConfigError):
    """The history database cannot be used (newer schema, not a database)."""


@dataclass(frozen=True)
class RunRecord:
    """One record of the history: a run, or a gate re-evaluation of a run."""

    seq: int
    run_id: str
    run_dir: str
    kind: str
    requirements: tuple[str, ...]
    started: float | None
    ended: float | None
    users: int | None
    verdict: str
    exit_code: int
    strict: bool
    baseline: str | None
    recorded_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def db_path(out_dir: str) -> str:
    """The history database of an ``--out`` folder."""
    return os.path.join(out_dir, FILENAME)


def db_of_run(run_dir: str) -> str:
    """The history database a run directory belongs to: the one in its parent (the ``--out`` folder)."""
    return db_path(os.path.dirname(os.path.abspath(run_dir)))


def connect(path: str, *, timeout: float = TIMEOUT) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the history database; autocommit, transactions explicit."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _wal(conn, timeout)
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL; a brand-new file being switched by another process at once may report busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{path}: history schema version {version} is newer than this loadgate's "
            f"({SCHEMA_VERSION}); use the newer loadgate, or another --out folder"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo an open transaction, keeping the error that ended it: SQLite already rolled back on its own
    after some (a full disk), and "cannot rollback - no transaction is active" would hide the real one."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


# --- writing ---------------------------------------------------------------------------------

_STAT_KEYS = ("requests", "failures", "error_rate", "throughput")


def _metric_rows(summary: SummaryDoc) -> Iterable[tuple[str | None, str | None, str | None, str, Any]]:
    """(requirement, request_type, name, metric, value) of every requirement and request in a summary."""

    def stats(entry: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
        for key in _STAT_KEYS:
            yield key, entry.get(key)
        for key, value in (entry.get("response_time_ms") or {}).items():
            yield key, value

    for req, entry in (summary.get("requirements") or {}).items():
        for metric, value in stats(entry):
            yield req, None, None, metric, value
    for entry in summary.get("requests") or ():
        for metric, value in stats(entry):
            yield entry.get("requirement"), entry.get("request_type"), entry.get("name"), metric, value
    for entry in (summary.get("resources") or {}).get("thresholds") or ():  # cpu_mean, memory_max, disk_p95...
        if entry.get("value") is not None:
            yield (
                entry.get("requirement"),
                None,
                None,
                f"{entry.get('metric')}_{entry.get('aggregate')}",
                entry["value"],
            )


def record(
    path: str,
    run_dir: str,
    run: RunDoc,
    summary: SummaryDoc,
    verdict: VerdictDoc,
    *,
    kind: str,
    baseline: str | None = None,
    timeout: float = TIMEOUT,
    capacity: Mapping[str, Any] | None = None,
) -> int:
    """Record one run or gate re-evaluation in one transaction; returns its ``seq``.

    ``verdict`` is the verdict.json document; ``capacity`` a capacity run's row (``capacity_store.row``).
    Raises sqlite3.Error or OSError if it cannot be written.
    """
    if kind not in ("run", "gate"):
        raise ValueError(f"kind must be 'run' or 'gate', got {kind!r}")
    reqs = [str(r) for r in run.get("requirements") or ()]
    versions = run.get("versions") or {}
    git = run.get("git") or {}
    row = (
        os.path.basename(os.path.abspath(run_dir)),
        os.path.abspath(run_dir),
        kind,
        ",".join(reqs),
        run.get("start"),
        run.get("end"),
        run.get("users"),
        verdict["verdict"],
        verdict["exit_code"],
        int(bool(verdict.get("strict"))),
        baseline,
        git.get("commit"),
        versions.get("loadgate"),
        time.time(),
        None if git.get("dirty") is None else int(bool(git["dirty"])),
    )
    conn = connect(path, timeout=timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            seq = conn.execute(
                "INSERT INTO runs (run_id, run_dir, kind, requirements, started, ended, users, verdict, exit_code,"
                " strict, baseline, git_commit, loadgate_version, recorded_at, git_dirty)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).lastrowid
            assert seq is not None  # an INSERT's row id
            conn.executemany(
                "INSERT INTO run_requirements (seq, requirement) VALUES (?, ?)", [(seq, r) for r in dict.fromkeys(reqs)]
            )
            conn.executemany(
                "INSERT INTO metrics (seq, requirement, request_type, name, metric, value) VALUES (?, ?, ?, ?, ?, ?)",
                [(seq, *m) for m in _metric_rows(summary)],
            )
            conn.executemany(
                "INSERT INTO thresholds (seq, requirement, metric, request, value, unit, status, target, alert,"
                " regression) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        seq,
                        t.get("requirement"),
                        t.get("metric"),
                        t.get("request"),
                        t.get("value"),
                        t.get("unit"),
                        t.get("status"),
                        t.get("target"),
                        t.get("alert"),
                        t.get("regression"),
                    )
                    for t in verdict.get("thresholds") or ()
                ],
            )
            if capacity is not None:
                conn.execute(
                    f"INSERT INTO capacity (seq, {', '.join(capacity)}) VALUES (?{', ?' * len(capacity)})",
                    (seq, *capacity.values()),
                )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return int(seq)
    finally:
        conn.close()


def record_safely(
    run_dir: str,
    run: RunDoc,
    summary: SummaryDoc,
    verdict: VerdictDoc,
    *,
    kind: str,
    baseline: str | None = None,
    say: Callable[[str], None],
    timeout: float = TIMEOUT,
    capacity: Mapping[str, Any] | None = None,
) -> int | None:
    """:func:`record` into the run's ``--out`` folder; a failure is one warning line, never an exception."""
    path = db_of_run(run_dir)
    try:
        return record(
            path, run_dir, run, summary, verdict, kind=kind, baseline=baseline, timeout=timeout, capacity=capacity
        )
    except (sqlite3.Error, OSError, HistoryError) as e:
        say(
            f"loadgate: warning: {path}: this {kind} was not recorded in the history ({e}); the run "
            "directory is complete and the exit code is the verdict's"
        )
        return None


# --- reading ---------------------------------------------------------------------------------


def open_existing(path: str, *, timeout: float = TIMEOUT) -> sqlite3.Connection:
    """Open a history database that must already exist; HistoryError if it is missing or unusable."""
    if not os.path.isfile(path):
        raise HistoryError(
            f"{path}: no history yet; 'loadgate run --out {os.path.dirname(path) or '.'}' records every run there"
        )
    try:
        return connect(path, timeout=timeout)
    except sqlite3.DatabaseError as e:
        raise HistoryError(
            f"{path}: cannot read the history ({e}); move the file aside and the next run starts a new one"
        ) from None


def _record(row: Sequence[Any]) -> RunRecord:
    d = dict(zip(_RUN_COLUMNS, row))
    d["requirements"] = tuple(r for r in str(d["requirements"]).split(",") if r)
    d["strict"] = bool(d["strict"])
    return RunRecord(**d)


_LATEST = "SELECT {cols} FROM runs r WHERE r.seq = (SELECT MAX(seq) FROM runs x WHERE x.run_id = r.run_id)"


def runs(path: str, *, requirement: str | None = None, limit: int | None = None) -> list[RunRecord]:
    """Every record (runs and gate re-evaluations), newest first; only those of ``requirement`` if given."""
    sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
    args: list[Any] = []
    if requirement:
        sql += " WHERE seq IN (SELECT seq FROM run_requirements WHERE requirement = ?)"
        args.append(requirement)
    sql += " ORDER BY seq DESC" + (" LIMIT ?" if limit else "")
    args += [limit] if limit else []
    conn = open_existing(path)
    try:
        return [_record(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def passing_runs(
    path: str, requirements: Sequence[str], *, before: float | None = None, exclude: str | None = None
) -> list[RunRecord]:
    """Runs whose latest verdict exited 0 and that covered all ``requirements``, newest start first."""
    sql = _LATEST.format(cols=", ".join(_RUN_COLUMNS)) + " AND r.exit_code = 0"
    args: list[Any] = []
    for req in dict.fromkeys(requirements):
        sql += " AND r.seq IN (SELECT seq FROM run_requirements WHERE requirement = ?)"
        args.append(req)
    if before is not None:
        sql += " AND r.started < ?"
        args.append(before)
    if exclude is not None:
        sql += " AND r.run_id != ?"
        args.append(exclude)
    conn = open_existing(path)
    try:
        return [_record(r) for r in conn.execute(sql + " ORDER BY r.started DESC, r.seq DESC", args)]
    finally:
        conn.close()


def passing_commits(path: str) -> list[tuple[str, str]]:
    """(run_id, git commit) of every run whose latest verdict exited 0 and that recorded a commit, newest
    start first: where ``loadgate trace`` starts by default."""
    conn = open_existing(path)
    try:
        return [
            (r, c)
            for r, c in conn.execute(
                _LATEST.format(cols="r.run_id, r.git_commit") + " AND r.exit_code = 0 AND r.git_commit IS NOT NULL"
                " ORDER BY r.started DESC, r.seq DESC"
            )
        ]
    finally:
        conn.close()


def trend(db_path: str, requirement: str, limit: int = 20) -> list[dict[str, Any]]:
    """The last ``limit`` runs of ``requirement``, oldest first, each with its latest verdict.

    Each dict: the run's fields (run_id, run_dir, kind, started, ended, users, verdict, exit_code,
    baseline, ...), ``metrics`` ({metric: value} for the whole requirement: requests, error_rate,
    throughput, p50, p95, ...) and ``thresholds`` (the requirement's gated metrics: metric, request,
    value, unit, status). An empty list when there is no history yet.
    """
    if not os.path.isfile(db_path):
        return []
    conn = open_existing(db_path)
    try:
        rows = conn.execute(
            _LATEST.format(cols=", ".join(_RUN_COLUMNS))
            + " AND r.seq IN (SELECT seq FROM run_requirements WHERE requirement = ?)"
            " ORDER BY r.started DESC, r.seq DESC LIMIT ?",
            (requirement, limit),
        ).fetchall()
        out = []
        for rec in reversed([_record(r) for r in rows]):
            metrics = {
                m: v
                for m, v in conn.execute(
                    "SELECT metric, value FROM metrics WHERE seq = ? AND requirement = ? AND request_type IS NULL"
                    " AND name IS NULL",
                    (rec.seq, requirement),
                )
            }
            gated = [
                {"metric": m, "request": q, "value": v, "unit": u, "status": s}
                for m, q, v, u, s in conn.execute(
                    "SELECT metric, request, value, unit, status FROM thresholds WHERE seq = ? AND"
                    " requirement = ? ORDER BY rowid",
                    (rec.seq, requirement),
                )
            ]
            out.append({**rec.to_dict(), "metrics": metrics, "thresholds": gated})
        return out
    finally:
        conn.close()

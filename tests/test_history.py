"""The history database: records, queries, migrations, concurrent writers, and failures that only warn."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from conftest import run_cli
from loadgate.history import store as history

REQ = "REQ-H-1"


def _summary(p95: float, requests: int = 100) -> dict:
    stats = {
        "requests": requests,
        "failures": 1,
        "error_rate": 1 / requests,
        "throughput": 10.0,
        "response_time_ms": {"min": 1.0, "mean": 20.0, "p50": 15.0, "p95": p95, "p99": p95 * 1.5, "max": p95 * 2},
    }
    return {
        "schema": "loadgate.summary/1",
        "requirements": {REQ: stats},
        "requests": [{"request_type": "GET", "name": "/x", "requirement": REQ, **stats}],
    }


def _verdict(verdict: str = "pass", exit_code: int = 0, p95: float = 100.0) -> dict:
    return {
        "verdict": verdict,
        "exit_code": exit_code,
        "strict": False,
        "thresholds": [
            {
                "requirement": REQ,
                "metric": "p95",
                "request": None,
                "target": None,
                "alert": ">500ms",
                "value": p95,
                "unit": "ms",
                "status": "pass",
            }
        ],
    }


def _record(
    db,
    run_id: str,
    start: float,
    *,
    verdict="pass",
    exit_code=0,
    kind="run",
    reqs=(REQ,),
    p95=100.0,
    baseline=None,
    timeout=history.TIMEOUT,
) -> int:
    run = {"requirements": list(reqs), "start": start, "end": start + 60, "users": 10}
    return history.record(
        str(db),
        f"/somewhere/{run_id}",
        run,
        _summary(p95),
        _verdict(verdict, exit_code, p95),
        kind=kind,
        baseline=baseline,
        timeout=timeout,
    )


def test_a_new_database_is_wal_and_at_the_current_schema_version(tmp_path):
    db = tmp_path / "history.sqlite"
    conn = history.connect(str(db))
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION >= 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "run_requirements", "metrics", "thresholds"} <= tables
    finally:
        conn.close()


def test_a_record_keeps_the_run_its_metrics_and_thresholds(tmp_path):
    db = tmp_path / "history.sqlite"
    seq = _record(db, "r1", 1000.0, p95=123.0, baseline="r0")
    (rec,) = history.runs(str(db))
    assert (
        rec.seq,
        rec.run_id,
        rec.run_dir,
        rec.kind,
        rec.requirements,
        rec.started,
        rec.ended,
        rec.users,
        rec.verdict,
        rec.exit_code,
        rec.baseline,
    ) == (seq, "r1", "/somewhere/r1", "run", (REQ,), 1000.0, 1060.0, 10, "pass", 0, "r0")
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT requirement, request_type, name, value FROM metrics WHERE metric = 'p95' ORDER BY request_type"
    ).fetchall()
    assert rows == [(REQ, None, None, 123.0), (REQ, "GET", "/x", 123.0)]
    assert conn.execute("SELECT metric, value, status FROM thresholds").fetchall() == [("p95", 123.0, "pass")]


def test_runs_newest_first_and_by_requirement(tmp_path):
    db = str(tmp_path / "history.sqlite")
    _record(db, "a", 1.0)
    _record(db, "b", 2.0, reqs=("REQ-H-2",))
    _record(db, "a", 1.0, kind="gate", verdict="fail", exit_code=1)
    assert [(r.run_id, r.kind) for r in history.runs(db)] == [("a", "gate"), ("b", "run"), ("a", "run")]
    assert [r.run_id for r in history.runs(db, requirement="REQ-H-2")] == ["b"]
    assert [r.run_id for r in history.runs(db, limit=1)] == ["a"]


def test_last_pass_is_the_newest_passing_run_before_this_one_by_its_latest_verdict(tmp_path):
    db = str(tmp_path / "history.sqlite")
    _record(db, "old", 1.0)
    _record(db, "failed", 2.0, verdict="fail", exit_code=1)
    _record(db, "passed-then-failed", 3.0)
    _record(db, "passed-then-failed", 3.0, kind="gate", verdict="fail", exit_code=1)
    _record(db, "warned", 4.0, verdict="warn", exit_code=0)
    _record(db, "other-req", 5.0, reqs=("REQ-H-2",))
    _record(db, "later", 9.0)
    found = history.passing_runs(db, [REQ], before=6.0, exclude="now")
    assert [r.run_id for r in found] == ["warned", "old"]
    assert [r.run_id for r in history.passing_runs(db, [REQ, "REQ-H-2"])] == []
    assert history.passing_runs(db, [REQ], exclude="later")[0].run_id == "warned"


def test_trend_is_the_last_runs_oldest_first_with_gated_metrics(tmp_path):
    db = str(tmp_path / "history.sqlite")
    for i in range(25):
        _record(db, f"run{i:02d}", float(i), p95=100.0 + i)
    _record(db, "run24", 24.0, kind="gate", verdict="fail", exit_code=1, p95=124.0)
    points = history.trend(db, REQ, limit=20)
    assert [p["run_id"] for p in points] == [f"run{i:02d}" for i in range(5, 25)]
    assert points[-1]["verdict"] == "fail" and points[-1]["kind"] == "gate"
    assert points[0]["metrics"]["p95"] == 105.0 and points[0]["metrics"]["requests"] == 100
    assert points[0]["thresholds"] == [
        {"metric": "p95", "request": None, "value": 105.0, "unit": "ms", "status": "pass"}
    ]
    assert history.trend(str(tmp_path / "none.sqlite"), REQ) == []


def test_an_older_database_is_migrated_in_place_keeping_its_records(tmp_path, monkeypatch):
    db = str(tmp_path / "history.sqlite")
    _record(db, "before", 1.0)
    step = ("ALTER TABLE runs ADD COLUMN note TEXT", "UPDATE runs SET note = 'migrated'")
    monkeypatch.setattr(history, "_MIGRATIONS", (*history._MIGRATIONS, step))
    monkeypatch.setattr(history, "SCHEMA_VERSION", len(history._MIGRATIONS))
    _record(db, "after", 2.0)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert conn.execute("SELECT run_id, note FROM runs ORDER BY seq").fetchall() == [
        ("before", "migrated"),
        ("after", None),
    ]


def test_a_newer_database_is_refused_not_damaged(tmp_path):
    db = tmp_path / "history.sqlite"
    _record(db, "a", 1.0)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(history.HistoryError, match="is newer than this loadgate's"):
        _record(db, "b", 2.0)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def _writer(db: str, worker: int, count: int, start: object) -> None:
    start.wait(60)  # all writers begin together, so their transactions really overlap
    for i in range(count):
        _record(db, f"w{worker}-{i}", float(worker * 1000 + i), reqs=(REQ, f"REQ-W-{worker}"))


def test_concurrent_writers_from_separate_processes_lose_and_corrupt_nothing(tmp_path):
    db = str(tmp_path / "history.sqlite")  # not created yet: the writers also race to create and migrate it
    workers, count = 6, 25
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=_writer, args=(db, w, count, start)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone() == (150, 150)
    per_run = conn.execute("SELECT count(*) FROM metrics GROUP BY seq").fetchall()
    assert len(per_run) == 150 and {n for (n,) in per_run} == {len(list(history._metric_rows(_summary(1.0))))}
    assert conn.execute("SELECT count(*) FROM run_requirements").fetchone()[0] == 300
    for w in range(workers):
        assert len(history.runs(db, requirement=f"REQ-W-{w}")) == count


def test_a_locked_database_gives_a_warning_not_an_exception(tmp_path):
    db = tmp_path / "history.sqlite"
    _record(db, "a", 1.0)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\nsys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        said: list[str] = []
        run_dir = tmp_path / "20260101T000000Z-REQ-H-1"
        got = history.record_safely(
            str(run_dir), {"requirements": [REQ]}, _summary(1.0), _verdict(), kind="run", say=said.append, timeout=0.2
        )
        assert got is None and len(said) == 1
        assert said[0].startswith(
            f"loadgate: warning: {db}: this run was not recorded in the history (database is locked)"
        )
        assert said[0].endswith("the run directory is complete and the exit code is the verdict's")
    finally:
        holder.communicate("\n", timeout=10)
    assert [r.run_id for r in history.runs(str(db))] == ["a"]


def test_a_corrupt_database_warns_and_the_gate_keeps_its_exit_code(tmp_path):
    from conftest import E2E

    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(tmp_path / "reports"),
        "--duration",
        "1s",
    )
    assert res.code == 0, res.stderr
    run_dir = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    db = tmp_path / "reports" / "history.sqlite"
    assert [r.kind for r in history.runs(str(db))] == ["run"]
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(db) + suffix):
            os.remove(str(db) + suffix)
    db.write_bytes(b"this is not a database, it was overwritten by something else" * 100)
    (run_dir / "verdict.json").unlink()
    res = run_cli("gate", str(run_dir))
    assert res.code == 0, res.stderr
    assert (run_dir / "verdict.json").exists()
    warning = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warning == [
        f"loadgate: warning: {db}: this gate was not recorded in the history (file is not a "
        "database); the run directory is complete and the exit code is the verdict's"
    ]
    res = run_cli("history", "--out", str(tmp_path / "reports"))
    assert res.code == 2 and res.error_lines == [
        f"loadgate history: error: {db}: cannot read the history (file is not a database); move the file aside "
        "and the next run starts a new one"
    ]


def test_history_of_a_folder_without_one_is_a_usage_error(tmp_path):
    res = run_cli("history", "--out", str(tmp_path))
    assert res.code == 2 and res.error_lines == [
        f"loadgate history: error: {tmp_path / 'history.sqlite'}: no history yet; 'loadgate run --out {tmp_path}' "
        "records every run there"
    ]
    assert not (tmp_path / "history.sqlite").exists()


def test_the_history_moves_with_its_out_folder(tmp_path):
    from loadgate.history.baseline import resolve

    src = tmp_path / "a"
    (src / "r1").mkdir(parents=True)
    (src / "r1" / "summary.json").write_text('{"requirements": {}}')
    history.record(
        history.db_path(str(src)),
        str(src / "r1"),
        {"requirements": [REQ], "start": 1.0},
        _summary(1.0),
        _verdict(),
        kind="run",
    )
    shutil.move(str(src), str(tmp_path / "b"))
    (tmp_path / "b" / "r2").mkdir()
    from loadgate.gate.thresholds import load_thresholds

    th = tmp_path / "t.yaml"
    th.write_text(f"requirement: {REQ}\ntitle: t\nthresholds:\n  - metric: p95\n    regression: '>10%'\n")
    base = resolve(None, str(tmp_path / "b" / "r2"), {"start": 2.0}, load_thresholds(str(th)), print)
    assert base is not None and base.run_dir == os.path.join(str(tmp_path / "b"), "r1") and base.run_id == "r1"

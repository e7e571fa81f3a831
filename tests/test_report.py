"""report.html and its chart data: hand-computed series and percentiles, escaping, degraded inputs, real runs;
the comparison with the baseline and the trend of the last runs from the history."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import E2E, ROOT, load, run_cli, run_dir_of

from loadgate.analysis.window import Window
from loadgate.data.samples import SCHEMA
from loadgate.history import store as history
from loadgate.outputs import charts, trend
from loadgate.errors import ConfigError
from loadgate.outputs.report import render_report, script_json, write_run_report

HOSTILE = ROOT / "tests" / "data" / "hostile"
HOSTILE_STRINGS = ["<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "</script><!--"]
DATA_BLOCK = re.compile(r'<script type="application/json" id="chart-data">(.*?)</script>', re.S)


def cached_run(tmp_path_factory, name: str, *args: str) -> tuple[int, Path]:
    """A real ``loadgate run`` shared by every test module of the session: (exit code, run directory)."""
    out = tmp_path_factory.getbasetemp() / "report-runs" / name
    marker = out / "exit-code"
    if not marker.exists():
        res = run_cli("run", "--out", str(out / "reports"), *args)
        dirs = sorted(p for p in (out / "reports").iterdir() if p.is_dir()) if (out / "reports").exists() else []
        assert dirs, f"loadgate run wrote no run directory:\n{res.stderr}"
        marker.write_text(str(res.code))
    return int(marker.read_text()), sorted(p for p in (out / "reports").iterdir() if p.is_dir())[-1]


def pass_run(tmp_path_factory) -> Path:
    """A short passing run with a ramp-up and a warmup to shade."""
    code, run_dir = cached_run(
        tmp_path_factory,
        "pass",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--users",
        "6",
        "--spawn-rate",
        "3",
        "--duration",
        "4s",
        "--warmup",
        "1s",
    )
    assert code == 0
    return run_dir


def hostile_run(tmp_path_factory) -> Path:
    """A run whose request names, error messages and threshold file carry markup and script breakers."""
    code, run_dir = cached_run(
        tmp_path_factory,
        "hostile",
        "--requirement",
        "REQ-HOSTILE-001",
        "--scenarios",
        str(HOSTILE / "scenarios"),
        "--thresholds",
        str(HOSTILE / "thresholds"),
    )
    assert code == 1  # error_rate crosses its alert
    return run_dir


def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two real runs of REQ-T-PASS into one --out folder, the second with the first as its baseline."""
    out = tmp_path_factory.getbasetemp() / "report-runs" / "two" / "reports"
    marker = out.parent / "done"
    if not marker.exists():
        args = (
            "run",
            "--requirement",
            "REQ-T-PASS",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            str(E2E / "thresholds"),
            "--out",
            str(out),
        )
        res = run_cli(*args)
        assert res.code == 0, res.stderr
        res = run_cli(*args, "--baseline", str(run_dir_of(out)))
        assert res.code == 0, res.stderr
        marker.write_text("ok")
    first, second = sorted(p for p in out.iterdir() if p.is_dir())
    return first, second


def chart_json(html: str) -> dict:
    blocks = DATA_BLOCK.findall(html)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def table(rows: list[tuple]) -> pa.Table:
    """Samples from (timestamp, name, response_time_ms, success, exception, users) tuples."""
    cols = list(zip(*rows))
    n = len(rows)
    return pa.table(
        {
            "timestamp": pa.array(cols[0], pa.float64()),
            "request_type": pa.array(["GET"] * n),
            "name": pa.array(cols[1]),
            "response_time_ms": pa.array(cols[2], pa.float64()),
            "response_length": pa.array([10] * n, pa.int64()),
            "status_code": pa.array([200] * n, pa.int32()),
            "success": pa.array(cols[3], pa.bool_()),
            "exception": pa.array(cols[4], pa.string()),
            "requirement": pa.array(["REQ-A-1"] * n),
            "worker": pa.array(["local"] * n),
            "users": pa.array(cols[5], pa.int32()),
            "user": pa.array([0] * n, pa.int32()),
            "intended_ms": pa.nulls(n, pa.float64()),
            "omitted": pa.nulls(n, pa.int32()),
            "period_ms": pa.nulls(n, pa.float64()),
        },
        schema=SCHEMA,
    )


# --- chart data, hand-computed -------------------------------------------------------------------

T0 = 1_700_000_000.0
ROWS = [
    (T0 + 0.1, "/a", 10.0, True, None, 1),
    (T0 + 0.5, "/a", 30.0, False, "boom", 2),
    (T0 + 1.2, "/b", 20.0, True, None, 2),
    (T0 + 1.7, "/a", 40.0, True, None, 3),
    (T0 + 1.9, "/b", 60.0, False, "boom", 3),
    (T0 + 2.5, "/b", 50.0, None, None, 3),
]


def test_series_cover_the_whole_run_second_by_second_with_exact_percentiles():
    s = charts.series(table(ROWS), Window(T0, T0 + 3.0), T0)
    assert s["bucket_s"] == 1 and s["t"] == [0.0, 1.0, 2.0]
    assert s["requests"] == [2, 3, 1]
    assert s["failures"] == [1, 1, 1]  # a null success counts as failed, as in the analysis
    assert s["users"] == [2, 3, 3]
    assert s["throughput"] == [2.0, 3.0, 1.0]
    assert s["p50"] == [20.0, 40.0, 50.0]
    assert s["p95"][1] == pytest.approx(float(np.percentile([20.0, 40.0, 60.0], 95)), rel=1e-3)


def test_long_series_merge_into_buckets_keeping_counts_and_peaks(monkeypatch):
    monkeypatch.setattr(charts, "MAX_POINTS", 2)
    s = charts.series(table(ROWS), Window(T0, T0 + 3.0), T0)
    assert s["bucket_s"] == 2 and s["t"] == [0.0, 2.0]
    assert s["requests"] == [5, 1] and s["failures"] == [2, 1] and s["users"] == [3, 3]
    assert s["throughput"] == [2.5, 1.0]  # the last bucket is one second long
    assert s["p50"] == [40.0, 50.0]  # the peak of the per-second p50s


def test_phases_shade_ramp_up_warmup_and_stopping():
    phases = charts._phases(T0, T0 + 20.0, T0 + 4.0, Window(T0 + 6.0, T0 + 18.0))
    assert phases == [
        {"kind": "ramp-up", "from": 0.0, "to": 4.0},
        {"kind": "warmup", "from": 4.0, "to": 6.0},
        {"kind": "stopping", "from": 18.0, "to": 20.0},
    ]
    # ramp-up never completed: everything before the window is ramp-up
    assert charts._phases(T0, T0 + 10.0, None, Window(T0 + 2.0, T0 + 10.0)) == [
        {"kind": "ramp-up", "from": 0.0, "to": 2.0}
    ]


def test_curves_are_the_exact_percentiles_of_the_window():
    rng = np.random.default_rng(7)
    values = rng.lognormal(3, 0.5, 2000)
    rows = [(T0 + i / 1000, "/a" if i % 4 else "/b", float(v), True, None, 5) for i, v in enumerate(values)]
    c = charts.curves(table(rows), Window(T0, T0 + 2.0), {"requirements": {"REQ-A-1": {}}})
    overall = c["groups"][0]
    assert overall["label"] == "All requests" and overall["requests"] == 2000
    assert overall["y"][0] == pytest.approx(values.min(), rel=1e-3)
    assert overall["y"][-1] == pytest.approx(values.max(), rel=1e-3)
    assert overall["x"][-1] == pytest.approx(np.log10(2000), abs=1e-4)  # the max sits at 1 - 1/n
    for x, y in zip(overall["x"][1:-1], overall["y"][1:-1]):
        q = 100 * (1 - 10**-x)
        assert x < np.log10(2000)
        assert y == pytest.approx(float(np.percentile(values, q)), rel=2e-3)
    assert [g["label"] for g in c["groups"][1:]] == ["GET /a", "GET /b"]  # busiest first
    assert c["more_requests"] == 0


def test_errors_grouped_by_request_and_message_with_first_and_last_seen():
    e = charts.errors(table(ROWS), {"start": T0 + 1.0, "end": T0 + 3.0})
    assert e["total"] == 3 and e["more"] == 0
    by_key = {(g["name"], g["message"]): g for g in e["groups"]}
    assert by_key[("/a", "boom")] == {
        "request_type": "GET",
        "name": "/a",
        "message": "boom",
        "count": 1,
        "in_window": 0,
        "first": T0 + 0.5,
        "last": T0 + 0.5,
    }
    assert by_key[("/b", "boom")]["in_window"] == 1
    assert by_key[("/b", "(no message)")]["count"] == 1
    assert charts.errors(table(ROWS), None, limit=1)["more"] == 2


def test_threshold_levels_are_numbers_in_the_threshold_unit():
    levels = charts.threshold_levels(
        [
            {
                "requirement": "R-1",
                "metric": "p95",
                "unit": "ms",
                "target": "<150ms",
                "alert": ">0.4s",
                "status": "pass",
            },
            {"requirement": "R-1", "metric": "error_rate", "unit": "ratio", "target": "<0.5%", "alert": None},
            {"requirement": "R-1", "metric": "throughput", "unit": "req/s", "target": None, "alert": "<500/s"},
            {"requirement": "R-1", "metric": "p95", "unit": "ms", "target": "garbage", "alert": None},
            {
                "requirement": "R-1",
                "metric": "p95",
                "unit": "ratio",
                "regression": ">10%",
                "target": None,
                "alert": None,
            },
        ]
    )
    assert [(l["metric"], l["level"], l["value"]) for l in levels] == [
        ("p95", "target", 150.0),
        ("p95", "alert", 400.0),
        ("error_rate", "target", 0.005),
        ("throughput", "alert", 500.0),
    ]


# --- escaping -------------------------------------------------------------------------------------


def test_script_json_cannot_end_the_script_or_open_a_comment():
    data = {"name": "</script><!-- <script>alert(1)</script> & \u2028\u2029 '\""}
    text = str(script_json(data))
    for bad in ("</", "<!--", "<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == data


def test_hostile_strings_in_every_json_document_stay_text():
    evil = "</script><!--<script>alert(1)</script>\"'><img src=x onerror=alert(1)>\u2028"
    verdict = {
        "verdict": "fail",
        "exit_code": 1,
        "reasons": [evil],
        "strict": False,
        "thresholds": [
            {
                "requirement": "REQ-A-1",
                "metric": "p95",
                "request": evil,
                "target": "<1ms",
                "alert": ">2ms",
                "value": 3.0,
                "unit": "ms",
                "requests": 1,
                "status": "fail",
                "reason": evil,
                "source": evil,
            }
        ],
    }
    stats = {
        "requests": 1,
        "failures": 1,
        "error_rate": 1.0,
        "throughput": 1.0,
        "response_time_ms": {k: 3.0 for k in ("min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")},
    }
    summary = {
        "window": {"start": T0, "end": T0 + 1, "seconds": 1.0},
        "overall": stats,
        "requirements": {"REQ-A-1": stats},
        "requests": [{"request_type": evil, "name": evil, "requirement": "REQ-A-1", **stats}],
    }
    run = {
        "requirements": ["REQ-A-1"],
        "start": T0,
        "end": T0 + 1,
        "titles": {"REQ-A-1": evil},
        "tasks": {"REQ-A-1": [evil]},
        "command_line": [evil],
        "host": evil,
        "problems": [evil],
    }
    chart = {
        "t0": T0,
        "phases": [],
        "levels": [],
        "curves": {"groups": [{"label": evil, "x": [0], "y": [1]}], "more_requests": 0},
        "series": {"bucket_s": 1, "t": [0]},
    }
    errors = {
        "groups": [
            {"request_type": evil, "name": evil, "message": evil, "count": 1, "in_window": 1, "first": T0, "last": T0}
        ],
        "total": 1,
        "more": 0,
    }
    html = render_report(verdict=verdict, summary=summary, run=run, charts=chart, errors=errors)
    assert "<img" not in html and "alert(1)</script>" not in html
    assert "\u2028" not in DATA_BLOCK.findall(html)[0]  # a raw line separator would end a JS string literal
    assert html.count("<script") == 3  # the data block, uPlot, the report's own script
    assert chart_json(html)["curves"]["groups"][0]["label"] == evil
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 9


# --- real runs ------------------------------------------------------------------------------------


def test_report_of_a_real_run_is_self_contained_and_traceable(tmp_path_factory):
    run_dir = pass_run(tmp_path_factory)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    run = load(run_dir, "run.json")
    assert "PASS" in html and "Everything comfortably within limits" in html
    for task in run["tasks"]["REQ-T-PASS"]:  # recorded at run time, e.g. "…/paths.py:8 FastUser.products"
        assert task in html
    assert re.search(r"paths\.py:\d+ FastUser\.products", html)
    for digest in [*run["scenario_files"].values(), *run["threshold_files"].values()]:
        assert digest in html
    assert run["versions"]["locust"] in html and (run["git"] is None or run["git"]["commit"] in html)
    # no fetch at view time: nothing is linked, sourced or imported; the library is inlined once
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", html)
    assert html.count("leeoniya/uPlot (v1.6.32)") == 1
    data = chart_json(html)
    seconds = run["end"] - run["start"]
    assert abs(len(data["series"]["t"]) - seconds) <= 2
    assert sum(data["series"]["requests"]) == run["samples"]  # the whole run, ramp-up included
    assert [p["kind"] for p in data["phases"]][:2] == ["ramp-up", "warmup"]
    assert data["curves"]["groups"][0]["requests"] == load(run_dir, "summary.json")["overall"]["requests"]


def test_report_command_re_renders_from_the_run_directory_alone(tmp_path_factory, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(pass_run(tmp_path_factory), run_dir)
    out = tmp_path / "again.html"
    res = run_cli("report", str(run_dir), "-o", str(out))
    assert res.code == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert chart_json(out.read_text(encoding="utf-8"))["series"]["requests"]
    assert out.stat().st_size < 5_000_000


@pytest.mark.parametrize("damage", ["missing", "empty", "corrupt"])
def test_report_without_usable_samples_says_so_and_keeps_the_tables(tmp_path_factory, tmp_path, damage):
    run_dir = tmp_path / "copy"
    shutil.copytree(pass_run(tmp_path_factory), run_dir)
    samples = run_dir / "samples.parquet"
    if damage == "missing":
        samples.unlink()
    elif damage == "empty":
        import pyarrow.parquet as pq

        pq.write_table(SCHEMA.empty_table(), samples)
    else:  # damaged evidence: an error naming the file, and the report and its seal left as they were
        samples.write_bytes(b"PAR1 this is not parquet")
        before = (run_dir / "report.html").read_bytes()
        with pytest.raises(ConfigError, match=r"samples\.parquet: truncated or corrupt Parquet file"):
            write_run_report(str(run_dir))
        assert (run_dir / "report.html").read_bytes() == before
        from loadgate.outputs.report import build_report

        html = build_report(
            str(run_dir),
            verdict=json.loads((run_dir / "verdict.json").read_text()),
            summary=json.loads((run_dir / "summary.json").read_text()),
            run=json.loads((run_dir / "run.json").read_text()),
        )
        out = run_dir / "rendered.html"
        out.write_text(html, encoding="utf-8")  # rendered from its files alone, the report still says why
    out = out if damage == "corrupt" else Path(write_run_report(str(run_dir)))
    html = out.read_text(encoding="utf-8")
    assert 'id="no-charts"' in html and not DATA_BLOCK.search(html) and "uPlot" not in html.split("<footer")[0]
    assert {"missing": "is missing", "empty": "holds no samples", "corrupt": "corrupt"}[damage] in html
    assert "/api/users/[id]" in html  # the per-request table still comes from summary.json
    assert 'data-charts-expected="0"' in html


def test_hostile_run_report_keeps_every_string_inert(tmp_path_factory):
    run_dir = hostile_run(tmp_path_factory)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    body = DATA_BLOCK.sub("", html)
    for s in HOSTILE_STRINGS:
        assert s not in html
    assert "<img" not in body and html.count("<script") == 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # shown, as text
    assert "CatchResponseError(&#39;&lt;/script&gt;&lt;!--" in body  # the server's message, as text
    labels = [g["label"] for g in chart_json(html)["curves"]["groups"]]
    assert "GET /api/products?<script>alert(1)</script>" in labels  # intact once parsed


def test_cpu_series_per_process_in_seconds_since_start_with_peaks_kept(monkeypatch):
    cpu = {"w2": [[100.0, 10.0], [101.0, 95.5]], "w1": [[100.5, 50.0]], "empty": []}
    out = charts.cpu_series(cpu, 99.0)
    assert out == [{"label": "w1", "t": [1.5], "cpu": [50.0]}, {"label": "w2", "t": [1.0, 2.0], "cpu": [10.0, 95.5]}]
    monkeypatch.setattr(charts, "MAX_POINTS", 2)
    long = {"local": [[float(t), float(t % 5) * 20] for t in range(5)]}  # 0 20 40 60 80
    assert charts.cpu_series(long, 0.0) == [{"label": "local", "t": [0.0, 3.0], "cpu": [40.0, 80.0]}]


# --- comparison with the baseline, trend of the last runs -------------------------------------------

REQ = "REQ-U-1"


def _threshold(
    metric: str,
    value: float | None,
    status: str,
    *,
    unit: str = "ms",
    request: str | None = None,
    target: str | None = None,
    alert: str | None = None,
    regression: str | None = None,
) -> dict:
    t = {
        "requirement": REQ,
        "metric": metric,
        "request": request,
        "target": target,
        "alert": alert,
        "value": value,
        "unit": unit,
        "requests": 100,
        "status": status,
        "reason": None,
        "source": "t.yaml:1",
    }
    return {**t, "regression": regression, "baseline": 1.0} if regression else t


def _thresholds(p95: float, p99: float | None, err: float, statuses: tuple[str, str, str]) -> list[dict]:
    """The same threshold file every run: p95, an error-rate, a request's p99, two regression thresholds."""
    out = [
        _threshold("p95", p95, statuses[0], target="<200ms", alert=">1s"),
        _threshold("error_rate", err, statuses[1], unit="ratio", target="<1%", alert=">5%"),
        _threshold("p95", 0.5, "fail", unit="ratio", regression=">10%"),  # a change, not a series
        _threshold("error_rate", 3.0, "fail", unit="ratio", regression=">50%"),  # same metric, scope, unit
        _threshold("p99", p99, statuses[2], request="GET /x", alert=">2s"),
    ]
    return out if p99 is not None else out[:4]  # a run before the p99 threshold existed


def _history_run(
    out: Path,
    run_id: str,
    start: float,
    verdict: str,
    thresholds: list[dict],
    *,
    kind: str = "run",
    reqs: tuple[str, ...] = (REQ,),
) -> None:
    run = {"requirements": list(reqs), "start": start, "end": start + 10, "users": 5}
    history.record(
        history.db_path(str(out)),
        str(out / run_id),
        run,
        {"requirements": {}},
        {"verdict": verdict, "exit_code": 1 if verdict == "fail" else 0, "thresholds": thresholds},
        kind=kind,
    )


def test_trend_is_the_history_up_to_this_run_plus_this_run_from_its_verdict(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    _history_run(out, "r1", 100.0, "pass", _thresholds(120.0, None, 0.0, ("pass", "pass", "pass")))
    _history_run(out, "r2", 200.0, "fail", _thresholds(300.0, 900.0, 0.08, ("warn", "fail", "pass")))
    _history_run(out, "r2", 200.0, "warn", _thresholds(300.0, 900.0, 0.02, ("warn", "warn", "pass")), kind="gate")
    _history_run(out, "now", 300.0, "fail", _thresholds(1.0, 1.0, 1.0, ("fail", "fail", "fail")))  # stale record
    _history_run(out, "later", 400.0, "pass", _thresholds(5.0, 5.0, 0.0, ("pass", "pass", "pass")))
    _history_run(out, "other", 250.0, "pass", [], reqs=("REQ-U-2",))
    verdict = {"verdict": "pass", "thresholds": _thresholds(150.0, 80.0, 0.001, ("pass", "pass", "pass"))}
    got, note = trend.load_trend(str(out / "now"), {"requirements": [REQ], "start": 300.0}, verdict)
    assert note is None and len(got) == 1
    t = got[0]
    assert t["requirement"] == REQ and t["regression_thresholds"] == 2
    # r2 by its latest verdict (the gate's); "now" once, from verdict.json; "later" started after this run
    assert t["runs"] == [
        {"run_id": "r1", "started": 100.0, "verdict": "pass", "current": False},
        {"run_id": "r2", "started": 200.0, "verdict": "warn", "current": False},
        {"run_id": "now", "started": 300.0, "verdict": "pass", "current": True},
    ]
    ms, ratio = t["charts"]
    assert ms["unit"] == "ms" and ms["series"] == [
        {
            "label": "p95 (all requests)",
            "metric": "p95",
            "request": None,
            "values": [120.0, 300.0, 150.0],
            "status": ["pass", "warn", "pass"],
        },
        {
            "label": "p99 (GET /x)",
            "metric": "p99",
            "request": "GET /x",
            "values": [None, 900.0, 80.0],
            "status": [None, "pass", "pass"],
        },
    ]
    assert [(l["metric"], l["level"], l["value"]) for l in ms["levels"]] == [
        ("p95", "target", 200.0),
        ("p95", "alert", 1000.0),
        ("p99", "alert", 2000.0),
    ]
    # the absolute error rate only: the regression threshold of the same metric and scope is told apart
    assert ratio["unit"] == "ratio" and ratio["series"] == [
        {
            "label": "error_rate (all requests)",
            "metric": "error_rate",
            "request": None,
            "values": [0.0, 0.02, 0.001],
            "status": ["pass", "warn", "pass"],
        }
    ]
    assert [(l["level"], l["value"]) for l in ratio["levels"]] == [("target", 0.01), ("alert", 0.05)]
    assert trend.chart_count(got) == 2
    # the last `limit` runs, this one included
    two, _ = trend.load_trend(str(out / "now"), {"requirements": [REQ], "start": 300.0}, verdict, limit=2)
    assert [r["run_id"] for r in two[0]["runs"]] == ["r2", "now"]
    assert two[0]["charts"][0]["series"][0]["values"] == [300.0, 150.0]


def test_trend_of_an_old_run_reaches_past_the_runs_after_it(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    for i in range(6):
        _history_run(out, f"r{i}", float(i), "pass", _thresholds(float(i), None, 0.0, ("pass",) * 3))
    verdict = {"verdict": "pass", "thresholds": _thresholds(99.0, None, 0.0, ("pass",) * 3)}
    got, _ = trend.load_trend(str(out / "r2"), {"requirements": [REQ], "start": 2.0}, verdict, limit=3)
    assert [r["run_id"] for r in got[0]["runs"]] == ["r0", "r1", "r2"]  # r3..r5 are later; r2 from its verdict
    assert got[0]["charts"][0]["series"][0]["values"] == [0.0, 1.0, 99.0]


def test_missing_corrupt_or_locked_history_is_a_note_and_the_trend_is_this_run(tmp_path, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    run, verdict = {"requirements": [REQ], "start": 5.0}, {"verdict": "pass", "thresholds": []}
    got, note = trend.load_trend(str(out / "now"), run, verdict)
    assert note.startswith(f"{out / 'history.sqlite'} does not exist") and trend.chart_count(got) == 0
    assert got[0]["runs"] == [{"run_id": "now", "started": 5.0, "verdict": "pass", "current": True}]
    db = out / "history.sqlite"
    db.write_bytes(b"not a database " * 200)
    got, note = trend.load_trend(str(out / "now"), run, verdict)
    assert "cannot be read" in note and "not a database" in note and len(got[0]["runs"]) == 1
    db.unlink()
    _history_run(out, "r1", 1.0, "pass", [])
    monkeypatch.setattr(trend, "PROBE_TIMEOUT", 0.1)
    holder = subprocess.Popen(  # exclusive locking mode: even WAL readers wait for it
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\nc.execute('PRAGMA locking_mode = EXCLUSIVE')\n"
            "c.execute('BEGIN EXCLUSIVE')\nc.execute('DELETE FROM run_requirements')\n"
            "print('locked', flush=True)\nsys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        got, note = trend.load_trend(str(out / "now"), run, verdict)
        assert "cannot be read (database is locked)" in note and len(got[0]["runs"]) == 1
    finally:
        holder.communicate("\n", timeout=10)
    assert trend.load_trend(str(out / "now"), run, verdict)[0][0]["runs"][0]["run_id"] == "r1"


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_report_renders_from_the_run_directory_alone_whatever_the_history(tmp_path_factory, tmp_path, damage):
    run_dir = tmp_path / "copy"
    shutil.copytree(pass_run(tmp_path_factory), run_dir)
    if damage == "corrupt":
        (tmp_path / "history.sqlite").write_bytes(b"garbage" * 100)
    html = Path(write_run_report(str(run_dir))).read_text(encoding="utf-8")
    assert 'id="trend-note"' in html and ("does not exist" if damage == "missing" else "cannot be read") in html
    assert "Only this run so far" in html and not re.search(r'id="trend-\d', html)
    assert chart_json(html)["trend"][0]["runs"][0]["run_id"] == "copy"
    assert 'data-charts-expected="6"' in html  # this run's charts only
    assert 'id="no-baseline"' in html and "--baseline RUN_DIR" in html


def test_hostile_names_in_comparison_json_stay_text(tmp_path_factory, tmp_path):
    evil = "</script><!--<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"
    run_dir = tmp_path / "copy"
    shutil.copytree(pass_run(tmp_path_factory), run_dir)
    row = {
        "request_type": evil,
        "name": evil,
        "requirement": evil,
        "metric": "p95",
        "baseline": 10.0,
        "candidate": 15.0,
        "change": 0.5,
        "ci": [0.3, 0.7],
        "p_value": 0.0001,
        "status": "regression",
        "change_kind": "relative",
        "sample_sizes": [500, 500],
    }
    doc = {
        "schema": "loadgate.compare/1",
        "baseline": evil,
        "candidate": "copy",
        "verdict": "fail",
        "requests": [
            row,
            {
                **row,
                "metric": "error_rate",
                "change_kind": "absolute",
                "baseline": 0.0,
                "candidate": 0.004,
                "change": 0.004,
                "ci": None,
                "p_value": None,
                "status": "unchanged",
            },
        ],
        "tolerance": {"latency": 0.1, "error_rate": 0.005},
        "confidence": 0.95,
        "unmatched": [{"requirement": evil, "request_type": evil, "name": evil, "only_in": "baseline"}],
    }
    (run_dir / "comparison.json").write_text(json.dumps(doc))
    html = Path(write_run_report(str(run_dir))).read_text(encoding="utf-8")
    section = html[html.index('id="baseline"') : html.index('id="trend"')]
    assert "<img" not in html and "alert(1)</script>" not in html and html.count("<script") == 3
    # heading, note, requirement + type + name of 2 rows and of the unmatched one
    assert section.count("&lt;img src=x onerror=alert(1)&gt;") == 11
    assert '<tr class="regression">' in section and "+50.0%" in section and "+30.0% … +70.0%" in section
    assert "+0.40pp" in section and "too few samples" in section and "&lt;0.001" in section
    assert "1 regression</b>" in section and "0 improvements and 1 unchanged of 2 rows" in section
    assert "latency percentiles +10% (relative change), error rate +0.5 percentage points" in section


def test_two_real_runs_the_second_has_the_comparison_and_a_trend_of_both(tmp_path_factory, tmp_path):
    first, second = two_runs(tmp_path_factory)
    comparison = load(second, "comparison.json")
    assert comparison["baseline"] == first.name and not (first / "comparison.json").exists()
    html = (second / "report.html").read_text(encoding="utf-8")
    assert f"Against the baseline ({first.name})</h2>" in html
    table = html[html.index('id="comparison-table"') : html.index("</table>", html.index('id="comparison-table"'))]
    assert table.count("<tr class=") == len(comparison["requests"]) >= 4
    assert "(all requests)" in table and "GET /api/users/[id]" in table
    data = chart_json(html)
    (t,) = data["trend"]
    assert [(r["run_id"], r["verdict"], r["current"]) for r in t["runs"]] == [
        (first.name, "pass", False),
        (second.name, "pass", True),
    ]
    assert t["runs"][0]["started"] == load(first, "run.json")["start"]
    values = {
        d.name: {(x["metric"], x["request"]): x["value"] for x in load(d, "verdict.json")["thresholds"]}
        for d in (first, second)
    }
    series = {(s["metric"], s["request"]): s for c in t["charts"] for s in c["series"]}
    assert set(series) == set(values[first.name])  # p95, error_rate, p99 of GET /api/users/[id]
    for key, s in series.items():
        assert s["values"] == [values[first.name][key], values[second.name][key]]
        assert s["status"] == ["pass", "pass"]
    assert [c["unit"] for c in t["charts"]] == ["ms", "ratio"]
    assert f'data-charts-expected="{(6 if data.get("cpu") else 5) + 2}"' in html
    assert 'id="trend-0-0"' in html and 'id="trend-0-1"' in html
    assert "No baseline" in (first / "report.html").read_text(encoding="utf-8")
    # re-rendered now that the second run is in the history too: still two runs, not three
    out = tmp_path / "again.html"
    assert run_cli("report", str(second), "-o", str(out)).code == 0
    again = chart_json(out.read_text(encoding="utf-8"))["trend"][0]
    assert [r["run_id"] for r in again["runs"]] == [first.name, second.name]
    # without samples the run's own charts go, the trend stays
    copy = tmp_path / "reports"
    shutil.copytree(second.parent, copy)
    (copy / second.name / "samples.parquet").unlink()
    html = Path(write_run_report(str(copy / second.name))).read_text(encoding="utf-8")
    assert 'data-charts-expected="2"' in html and 'id="no-charts"' in html
    assert "series" not in chart_json(html) and len(chart_json(html)["trend"][0]["runs"]) == 2

"""``loadgate capacity`` end to end: real Locust against the real demo target, with known answers.

``/api/limited/10/100`` serves at most 10 requests at once for 100 ms each: 100 req/s. Users paced
at one request a second therefore fit up to about 100 of them; beyond, the queue (and p95) grows
without bound. The search must land within ±25% of 100.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import E2E, load, run_cli, run_dir_of

CAP = E2E / "capacity"


def _capacity(out, *args: str, timeout: float = 300):
    started = time.monotonic()
    res = run_cli(
        "capacity",
        "--scenarios",
        str(CAP / "scenarios"),
        "--thresholds",
        str(CAP / "thresholds"),
        "--out",
        str(out),
        *args,
        timeout=timeout,
    )
    return res, time.monotonic() - started


def test_finds_the_known_capacity_of_a_server_with_ten_slots(tmp_path):
    args = (
        "--requirement",
        "REQ-CAP-001",
        "--start-users",
        "50",
        "--max-users",
        "400",
        "--step-duration",
        "4s",
        "--resolution",
        "25%",
        "--budget",
        "4m",
    )
    res, wall = _capacity(tmp_path / "out", *args)
    run_dir = run_dir_of(tmp_path / "out")
    doc = load(run_dir, "capacity.json")
    note = (
        f"found {doc['max_users']} users vs expected ~100; steps "
        f"{[(s['users'], s['status'], round(s['p95'] or 0)) for s in doc['steps']]}; wall {wall:.0f}s; "
        f"command: loadgate capacity {' '.join(args)}"
    )
    print(note)
    assert res.code == 0, res.stdout + res.stderr
    assert res.stderr.splitlines()[0].startswith("loadgate capacity: plan: from 50 users doubling up to 400")
    assert doc["schema"] == "loadgate.capacity/1"
    assert 75 <= doc["max_users"] <= 125, note
    assert doc["first_failing_users"] > doc["max_users"]
    assert doc["limit"]["metric"] == "p95" and doc["limit"]["value"] > 500
    assert doc["throughput_at_max"] == pytest.approx(doc["max_users"], rel=0.15)  # one request a second each
    assert all(s["status"] in ("pass", "fail", "unresolved") for s in doc["steps"])
    assert [s["users"] for s in doc["steps"]][:3] == [50, 100, 200] or doc["steps"][1]["status"] != "pass"
    for s in doc["steps"]:  # every step is measured on its own window, after its settle part
        assert s["settle_start"] < s["start"] < s["end"]
    # the usual run directory, gated: verdict, summary and the report are there
    verdict = load(run_dir, "verdict.json")
    assert verdict["verdict"] == "pass" and verdict["reasons"][0].startswith(f"capacity: {doc['max_users']} users")
    assert (run_dir / "samples.parquet").exists() and (run_dir / "report.html").exists()
    assert not (run_dir / "capacity.control.json").exists() and not (run_dir / "capacity.state.json").exists()


def test_a_target_that_never_saturates_reports_at_least_max_users_with_two_workers(tmp_path):
    res, _ = _capacity(
        tmp_path / "out",
        "--requirement",
        "REQ-CAP-002",
        "--start-users",
        "10",
        "--max-users",
        "40",
        "--step-duration",
        "3s",
        "--budget",
        "2m",
        "--workers",
        "2",
    )
    doc = load(run_dir_of(tmp_path / "out"), "capacity.json")
    assert res.code == 0, res.stdout + res.stderr
    assert [s["users"] for s in doc["steps"]] == [10, 20, 40]
    assert doc["max_users"] == 40 and doc["at_least"] is True and doc["first_failing_users"] is None
    assert "capacity: at least 40 users" in res.stdout
    assert "--max-users 40 passed" in doc["stopped_because"]
    run_dir = run_dir_of(tmp_path / "out")
    gated = [(t["metric"], t.get("regression"), t["status"]) for t in load(run_dir, "verdict.json")["thresholds"]]
    assert gated[:2] == [("max_users", None, "pass"), ("max_users", ">10%", "skipped")]
    run = load(run_dir, "run.json")  # the search ends like a timed run: every worker confirms what it sent
    assert len(run["worker_counts"]) == 2 and run["problems"] == []
    assert all(w["sent"] == w["received"] > 0 for w in run["worker_counts"].values())
    assert run["samples"] == run["locust_requests"]


def test_a_saturated_generator_ends_the_search_inconclusive(tmp_path):
    res, _ = _capacity(
        tmp_path / "out",
        "--requirement",
        "REQ-CAP-003",
        "--start-users",
        "4",
        "--max-users",
        "8",
        "--step-duration",
        "5s",
        "--budget",
        "1m",
    )
    doc = load(run_dir_of(tmp_path / "out"), "capacity.json")
    assert res.code == 3, res.stdout + res.stderr
    assert doc["inconclusive"] is True and doc["max_users"] is None
    # on a busy shared machine the generator may not reach 90% of a core: then its late iterations say it
    assert "the step of 4 users is inconclusive: load generator" in doc["stopped_because"]
    assert "add --workers" in doc["stopped_because"]
    assert json.loads((run_dir_of(tmp_path / "out") / "verdict.json").read_text())["verdict"] == "inconclusive"


def test_max_users_below_start_users_is_a_usage_error(tmp_path):
    res, _ = _capacity(tmp_path / "out", "--requirement", "REQ-CAP-001", "--start-users", "50", "--max-users", "10")
    assert res.code == 2
    assert res.error_lines == ["loadgate capacity: error: --max-users 10: must be at least --start-users 50"]
    assert not (tmp_path / "out").exists()


def _dated(day: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp()


RELEASES = (("v1", "2026-01-01", "1"), ("v2", "2026-02-01", "1"), ("v3", "2026-03-01", "3"))


@pytest.fixture(scope="module")
def three_releases(tmp_path_factory):
    """Three capacity runs of REQ-CAP-004 into one --out folder: 5 slots of 100 ms (about 50 users), the
    same again a month later, and a build three times slower (about 16 users), dated a month apart."""
    out = tmp_path_factory.mktemp("plan") / "out"
    results = []
    for release, day, scale in RELEASES:
        res, _ = _capacity(
            out,
            "--requirement",
            "REQ-CAP-004",
            "--start-users",
            "5",
            "--max-users",
            "80",
            "--step-duration",
            "2s",
            "--resolution",
            "50%",
            "--budget",
            "2m",
            "--release",
            release,
            "--release-date",
            day,
            "--target-latency-scale",
            scale,
        )
        results.append(res)
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 3, [r.stderr for r in results]
    return out, dirs, results


def test_three_releases_give_the_trend_regression_and_runway_of_a_hand_calculation(three_releases):
    import math

    out, dirs, results = three_releases
    docs = [load(d, "capacity.json") for d in dirs]
    caps = [d["max_users"] for d in docs]
    note = f"capacities {caps}, brackets {[d['first_not_passing_users'] for d in docs]}"
    assert all(c is not None and not d["at_least"] for c, d in zip(caps, docs)), note
    assert caps[2] < min(caps[:2]), note  # the slower build carries fewer users
    plan = docs[2]["planning"]
    # the trend: least squares of ln(capacity) on the release date (days), by hand
    x = [(_dated(day) - _dated("2026-03-01")) / 86400 for _, day, _ in RELEASES]
    y = [math.log(c) for c in caps]
    mx, my = sum(x) / 3, sum(y) / 3
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    monthly = math.exp(slope * 365.2425 / 12) - 1
    assert plan["trend"]["n"] == 3 and plan["trend"]["monthly"] == pytest.approx(monthly), note
    assert plan["trend"]["runs"] == [d.name for d in dirs]
    # the regression: v3 against v2, the least drop the brackets allow beyond 10%
    least = (caps[1] - docs[2]["first_not_passing_users"]) / caps[1]
    reg = {t["metric"]: t for t in load(dirs[2], "verdict.json")["thresholds"] if t.get("regression")}["max_users"]
    assert reg["status"] == ("fail" if least > 0.10 else "pass") == "fail", note
    assert reg["ci95"][1] == pytest.approx(-least) and reg["value"] == pytest.approx((caps[2] - caps[1]) / caps[1])
    assert plan["regression"]["baseline_run"] == dirs[1].name and results[2].code == 1
    commit = load(dirs[2], "run.json")["git"]["commit"]
    assert plan["regression"]["commit_range"] == f"{commit[:12]}..{commit[:12]}"  # same checkout: nothing between
    # the runway: peak 8 users growing 8%/month meets v3's capacity moving along the trend
    g = 0.08
    months = math.log(caps[2] / 8) / (math.log1p(g) - math.log1p(monthly))
    way = plan["runway"]["capacity"]
    assert way["months"] == pytest.approx(months) and way["date"] == pytest.approx(
        _dated("2026-03-01") + months * 365.2425 / 12 * 86400
    )
    alert = plan["runway"]["alert"]  # headroom alert <20%: 1.2 x the grown peak
    assert alert["already"] == (caps[2] <= 9.6)
    if not alert["already"]:
        assert alert["months"] == pytest.approx(math.log(caps[2] / 9.6) / (math.log1p(g) - math.log1p(monthly)))
    # headroom of each run: capacity / 8 - 1, gated at >50% / <20%
    for d, c in zip(dirs, caps):
        h = next(t for t in load(d, "verdict.json")["thresholds"] if t["metric"] == "headroom")
        assert h["value"] == pytest.approx((c - 8) / 8)
        assert h["status"] == ("pass" if c > 12 else "warn" if c >= 9.6 else "fail")


def test_capacity_md_names_the_run_of_each_figure(three_releases):
    _out, dirs, _results = three_releases
    md = (dirs[2] / "capacity.md").read_text()
    me = dirs[2].name
    sections = md.split("\n## ")
    assert [s.splitlines()[0] for s in sections[1:]] == ["Current State", "Future Requirements", "Scaling"]
    for line in md.splitlines():
        if line.startswith(("- Capacity:", "- Throughput at capacity", "- Knee", "- Headroom against")):
            assert f"(run `{me}`)" in line, line
    assert f"(run `{dirs[1].name}`)" in next(l for l in md.splitlines() if "REGRESSION" in l)
    for d in dirs:  # every release's capacity in the table, with its run
        assert f"`{d.name}`" in md
    assert "from the capacity of run `" + me + "`" in md
    assert f"An estimate, not a gate (run `{me}`)" in md


def test_history_lists_the_capacity_runs_and_a_regate_gives_the_same_verdict(three_releases):
    out, dirs, results = three_releases
    res = run_cli("history", "--capacity", "--out", str(out))
    assert res.code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "release", "dated"]
    assert [l.split()[1] for l in lines[1:]] == ["v1", "v2", "v3"]
    rows = json.loads(run_cli("history", "--capacity", "--json", "--out", str(out)).stdout)
    assert [r["max_users"] for r in rows] == [load(d, "capacity.json")["max_users"] for d in dirs]
    before = load(dirs[2], "verdict.json")
    again = run_cli("gate", str(dirs[2]), "--thresholds", str(CAP / "thresholds"))
    after = load(dirs[2], "verdict.json")
    assert again.code == results[2].code == before["exit_code"], again.stdout + again.stderr
    assert [(t["metric"], t["status"], t["value"]) for t in after["thresholds"]] == [
        (t["metric"], t["status"], t["value"]) for t in before["thresholds"]
    ]
    assert after["verdict"] == before["verdict"] and "capacity: " in after["reasons"][0]
    assert run_cli("verify", str(dirs[2])).code == 0
    rerun = json.loads(run_cli("history", "--capacity", "--json", "--out", str(out)).stdout)
    assert len(rerun) == 3 and rerun[2]["kind"] == "gate"  # the re-gate is the run's latest record


def test_the_report_draws_capacity_and_peak_across_releases_in_chromium(three_releases, tmp_path):
    import shutil

    from test_report import chart_json
    from test_report_browser import open_and_shoot

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no 'chromium' on PATH: install Debian's chromium to open report.html in a headless browser")
    _out, dirs, _results = three_releases
    page = dirs[2] / "report.html"
    html = page.read_text()
    data = chart_json(html)
    assert len(data["plan"]["runs"]) == 3 and data["plan"]["marks"]  # three releases, the runway marked
    dom = open_and_shoot(path, dirs[2], tmp_path, "report-capacity-plan.png", height=4200)
    plan = dom[dom.index('id="capacity-plan"') :]
    assert "<canvas" in plan[plan.index('id="plan-chart"') : plan.index('id="plan-scaling"')]  # the trend chart drawn
    for d in dirs:
        assert d.name in plan  # each release's run in the plan's table
    top = html[html.index('id="capacity-tiles"') : html.index('id="capacity"')]
    assert "Capacity (most users within the alerts)" in top and "p95 at the capacity step" in top
    assert "Requests in window" not in top  # no whole-run figure mixing the steps among the tiles
    header = html[html.index("<header") : html.index("</header>")]
    assert "capacity search from 5 to 80 users · capacity found:" in header


def test_the_scaling_estimate_reads_prometheus_when_the_thresholds_name_it(tmp_path):
    import os

    import psutil

    import prometheus_fixture

    if not (prometheus_fixture.PROMETHEUS and prometheus_fixture.NODE_EXPORTER):
        pytest.skip("Debian's prometheus and prometheus-node-exporter are not installed")
    stack = prometheus_fixture.start(tmp_path)
    try:
        thresholds = tmp_path / "thresholds"
        thresholds.mkdir()
        text = (
            (CAP / "thresholds" / "REQ-CAP-004.yaml")
            .read_text()
            .replace(
                "capacity:\n", f"load:\n  resources: {{source: prometheus, prometheus: '{stack.url}'}}\ncapacity:\n"
            )
        )
        (thresholds / "REQ-CAP-004.yaml").write_text(text)
        out = tmp_path / "out"
        res = run_cli(
            "capacity",
            "--requirement",
            "REQ-CAP-004",
            "--scenarios",
            str(CAP / "scenarios"),
            "--thresholds",
            str(thresholds),
            "--out",
            str(out),
            "--start-users",
            "5",
            "--max-users",
            "20",
            "--step-duration",
            "2s",
            "--budget",
            "1m",
            timeout=180,
        )  # at least 20: headroom 150%, a pass
        assert res.code == 0, res.stdout + res.stderr
        scaling = load(run_dir_of(out), "capacity.json")["planning"]["scaling"]
    finally:
        stack.stop()
    assert scaling["source"] == "prometheus" and "reason" not in scaling, scaling
    assert [s["users"] for s in scaling["steps"]] == [5, 10, 20]
    for s in scaling["steps"]:  # node_exporter of this machine: busy cores and memory in use
        assert 0 < s["cpu_cores"] <= os.cpu_count() + 0.5 and 0 < s["memory_bytes"] < psutil.virtual_memory().total
    assert f"{os.cpu_count()} CPUs" in scaling["assumptions"][1]
    assert scaling["replicas"] >= 1 and scaling["cpu"]["at_peak"] > 0

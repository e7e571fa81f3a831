"""report.html of real runs opened in headless Chromium: no console message, every chart drawn, hostile strings inert.

Debian's ``chromium`` is needed (``.ci/run`` installs it). Without it the tests skip, saying so, except
under ``CI=true``, where a missing browser fails them. Screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from test_report import HOSTILE_STRINGS, chart_json, hostile_run, pass_run, two_runs

ARTIFACTS = ROOT / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("no 'chromium' on PATH under CI=true: .ci/run must install Debian's chromium package")
    pytest.skip(
        "no 'chromium' on PATH: install Debian's chromium (apt-get install -y chromium) to open "
        "report.html in a headless browser"
    )


def browse(chromium: str, page: Path, profile: Path, *action: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``page``; returns stdout and every console line the page produced."""
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The page's own script logs nothing: any console line is an error, a CSP violation or a stray alert.
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def charts_to_draw(page: Path) -> int:
    """Five charts of the requests, one of the generator's CPU, one of the target's resources when
    resources.parquet has cpu, memory or disk, one of each arrival shape's schedule, each trend chart of 2 runs
    or more, and the two charts of a capacity search with the chart of its plan (capacity and peak across releases)."""
    data = chart_json(page.read_text(encoding="utf-8"))
    trend = sum(len(t["charts"]) for t in data["trend"] if len(t["runs"]) >= 2)
    return (
        (
            5 + bool(data.get("cpu")) + bool(data.get("resources")) + len(data.get("arrival") or ())
            if "series" in data
            else 0
        )
        + trend
        + (2 if data.get("capacity") else 0)
        + (1 if data.get("capacity") and data.get("plan") else 0)
    )


def open_and_shoot(chromium: str, run_dir: Path, tmp_path: Path, shot: str, height: int = 3000) -> str:
    page = run_dir / "report.html"
    dom, console = browse(chromium, page, tmp_path / "profile", "--dump-dom")
    assert console == []
    body = re.search(r"<body[^>]*>", dom).group(0)
    drawn = re.search(r'data-charts-drawn="(\d+)"', body).group(1)
    expected = re.search(r'data-charts-expected="(\d+)"', body).group(1)
    assert drawn == expected == str(charts_to_draw(page)), body
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / shot
    target.unlink(missing_ok=True)
    _, console = browse(
        chromium,
        page,
        tmp_path / "profile",
        "--hide-scrollbars",
        f"--screenshot={target}",
        f"--window-size=1400,{height}",
    )
    assert console == []
    assert png_size(target) == (1400, height) and target.stat().st_size > 50_000  # a drawn page, not a blank one
    return dom


def test_report_of_a_real_run_opens_cleanly_with_every_chart_drawn(chromium, tmp_path_factory, tmp_path):
    assert charts_to_draw(pass_run(tmp_path_factory) / "report.html") == 6  # the only run in its --out folder
    dom = open_and_shoot(chromium, pass_run(tmp_path_factory), tmp_path, "report.png")
    assert dom.count("<canvas") >= 5  # uPlot draws on canvas, one per chart
    assert "REQ-T-PASS" in dom and "PASS" in dom


def test_hostile_strings_stay_inert_in_the_browser(chromium, tmp_path_factory, tmp_path):
    dom = open_and_shoot(chromium, hostile_run(tmp_path_factory), tmp_path, "report-hostile.png")
    assert "<img" not in dom  # no element was made from a name or message
    assert len(re.findall(r"<script\b", dom)) == 3  # the data block, uPlot, the report's own script
    for s in HOSTILE_STRINGS:
        assert s not in dom
    # names from the chart data reach the legends as text, so the DOM serialises them escaped
    assert "GET /api/products?&lt;script&gt;alert(1)&lt;/script&gt; (" in dom


def test_comparison_and_trend_of_a_second_run_are_drawn(chromium, tmp_path_factory, tmp_path):
    _, second = two_runs(tmp_path_factory)
    assert charts_to_draw(second / "report.html") == 8  # 6 of the run, the trend's ms and error-rate charts
    dom = open_and_shoot(chromium, second, tmp_path, "report-trend.png", height=3600)
    assert dom.count("<canvas") >= 8
    assert 'id="comparison-table"' in dom and "p95 (all requests)" in dom  # a trend legend entry, as text


def test_capacity_report_draws_throughput_and_latency_against_users(chromium, tmp_path_factory, tmp_path):
    from conftest import E2E, run_cli, run_dir_of

    out = tmp_path / "out"
    res = run_cli(
        "capacity",
        "--requirement",
        "REQ-CAP-002",
        "--scenarios",
        str(E2E / "capacity" / "scenarios"),
        "--thresholds",
        str(E2E / "capacity" / "thresholds"),
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
    )
    assert res.code == 0, res.stderr
    run_dir = run_dir_of(out)
    # the run's five, the generator's CPU, this machine's resources (sampled for the scaling estimate),
    # the search's two, the plan's
    assert charts_to_draw(run_dir / "report.html") == 5 + 1 + 1 + 2 + 1
    dom = open_and_shoot(chromium, run_dir, tmp_path, "report-capacity.png", height=3400)
    assert 'id="capacity"' in dom and dom.count('class="step-pass"') == 3  # 5, 10, 20 users

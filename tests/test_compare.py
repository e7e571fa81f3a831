"""Compare: the statistics on synthetic samples with known answers, then real runs of the demo target.

The false-alarm rate on real runs (20 pairs of an unchanged target) is measured by
``bench/compare_false_alarms.py``; twenty pairs of real runs are too slow for the suite.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from conftest import E2E, load, run_cli
from loadgate.history import compare
from loadgate.history.compare import Group, RunSamples, compare_loaded, error_rate_change, percentile_change


def _run(
    rng: np.random.Generator, scale: float = 1.0, *, n_products: int = 400, n_search: int = 130, name: str = "run"
) -> RunSamples:
    """A run like a short REQ-DEMO-001 run: a fast endpoint, a slow one with a heavier tail, and both."""
    products = rng.lognormal(math.log(35 * scale), 0.45, n_products) + rng.exponential(2.0, n_products)
    search = rng.lognormal(math.log(50 * scale), 0.6, n_search) + rng.exponential(2.0, n_search)
    groups = {
        ("REQ-X-1", "GET", "/api/products"): Group(np.sort(products), n_products, 0),
        ("REQ-X-1", "GET", "/api/search"): Group(np.sort(search), n_search, 0),
        ("REQ-X-1", None, None): Group(np.sort(np.concatenate([products, search])), n_products + n_search, 0),
    }
    return RunSamples(name, name, groups)


def _regressions(doc: dict) -> list[dict]:
    return [r for r in doc["requests"] if r["status"] == "regression"]


# --- the bootstrap ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", [50.0, 95.0, 99.0, 37.3])
def test_order_statistic_bootstrap_is_the_plain_bootstrap(q):
    rng = np.random.default_rng(3)
    x = np.sort(rng.lognormal(3.0, 0.6, 300))
    fast = compare._boot_percentile(x, q, np.random.default_rng(4), 40_000)
    idx = np.random.default_rng(5).integers(0, len(x), (20_000, len(x)))
    plain = np.percentile(x[idx], q, axis=1)
    for level in (0.025, 0.25, 0.5, 0.75, 0.975):
        assert np.quantile(fast, level) == pytest.approx(np.quantile(plain, level), rel=0.01)


def test_the_same_samples_are_unchanged_with_p_1():
    x = np.sort(np.random.default_rng(1).lognormal(3.0, 0.5, 1000))
    c = percentile_change(x, x, 95.0)
    assert (c.change, c.p_value, c.status) == (0.0, 1.0, "unchanged")
    assert c.ci[0] < 0 < c.ci[1]


def test_the_ci_covers_no_change_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        a, b = (np.sort(rng.lognormal(3.5, 0.5, 500)) for _ in range(2))
        lo, hi = percentile_change(a, b, 95.0, resamples=2000).ci
        covered += lo <= 0 <= hi
    assert 180 <= covered <= 198  # 95% of 200 = 190; binomial sd ~3


def test_too_few_samples_beyond_a_percentile_give_no_interval():
    rng = np.random.default_rng(2)
    a, b = np.sort(rng.lognormal(3, 0.5, 150)), np.sort(rng.lognormal(3, 0.5, 150) * 2)
    c = percentile_change(a, b, 99.0)  # 1.5 samples beyond p99
    assert c.ci is None and c.p_value is None and c.status == "unchanged" and c.change > 0.5


def test_no_shift_in_20_pairs_of_same_distribution_draws_finds_at_most_one_regression():
    rng = np.random.default_rng(2026)
    flagged = sum(bool(_regressions(compare_loaded(_run(rng), _run(rng)))) for _ in range(20))
    assert flagged <= 1


def test_false_alarm_rate_of_a_whole_comparison_is_under_5_percent():
    rng = np.random.default_rng(7)
    flagged = sum(bool(_regressions(compare_loaded(_run(rng), _run(rng)))) for _ in range(200))
    assert flagged <= 10, f"{flagged} of 200 same-distribution pairs had a regression"


def test_a_40_percent_shift_is_a_regression_in_every_pair():
    rng = np.random.default_rng(40)
    for _ in range(20):
        doc = compare_loaded(_run(rng), _run(rng, 1.4))
        bad = {(r["name"], r["metric"]) for r in _regressions(doc)}
        assert ("/api/products", "p50") in bad and (None, "p50") in bad and doc["verdict"] == "fail"


def test_a_40_percent_speed_up_is_an_improvement():
    rng = np.random.default_rng(41)
    doc = compare_loaded(_run(rng, 1.4), _run(rng))
    assert {r["status"] for r in doc["requests"] if r["metric"] == "p50"} == {"improvement"}
    assert doc["verdict"] == "pass"


def test_a_shift_inside_the_tolerance_is_not_a_regression_even_when_significant():
    rng = np.random.default_rng(5)
    a, b = np.sort(rng.lognormal(3, 0.5, 20_000)), np.sort(rng.lognormal(3, 0.5, 20_000) * 1.05)
    c = percentile_change(a, b, 50.0)
    assert c.p_value < 0.001 and c.ci[0] > 0 and c.status == "unchanged"


def test_status_needs_the_whole_interval_beyond_the_tolerance():
    assert compare._status(0.11, 0.5, 0.10) == "regression"
    assert compare._status(0.09, 0.5, 0.10) == "unchanged"  # significant, estimate beyond, CI not all beyond
    assert compare._status(-0.5, -0.11, 0.10) == "improvement"
    assert compare._status(-0.2, 0.2, 0.10) == "unchanged"


# --- error rate ------------------------------------------------------------------------------


def test_error_rate_uses_newcombes_interval_and_the_two_proportion_z_test():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339
    c = error_rate_change(48, 80, 56, 70)
    assert c.change == pytest.approx(0.2) and c.ci == pytest.approx((0.0524, 0.3339), abs=5e-5)
    pooled = 104 / 150
    z = 0.2 / math.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert c.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))


def test_error_rate_tolerance_is_in_percentage_points():
    assert error_rate_change(0, 5000, 100, 5000).status == "regression"  # 0% -> 2%
    assert error_rate_change(0, 5000, 10, 5000).status == "unchanged"  # 0% -> 0.2%, within 0.5 pp
    assert error_rate_change(0, 1000, 0, 1000).p_value == 1.0


@pytest.mark.parametrize("text, value", [("10%", 0.1), ("0.5pp", 0.005), ("0.5%", 0.005), ("0.2", 0.2), ("0", 0.0)])
def test_parse_tolerance(text, value):
    assert compare.parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-1%", "x", "", "nan"])
def test_parse_tolerance_rejects(text):
    with pytest.raises(ValueError, match="expected a tolerance like 10%"):
        compare.parse_tolerance(text)


def test_document_has_the_contract_keys():
    doc = compare_loaded(_run(np.random.default_rng(1), name="a"), _run(np.random.default_rng(2), name="b"))
    assert doc["schema"] == "loadgate.compare/1" and (doc["baseline"], doc["candidate"]) == ("a", "b")
    assert doc["verdict"] in ("pass", "fail")
    keys = {
        "request_type",
        "name",
        "requirement",
        "metric",
        "baseline",
        "candidate",
        "change",
        "ci",
        "p_value",
        "status",
    }
    assert all(keys <= set(r) for r in doc["requests"]) and len(doc["requests"]) == 12
    assert [r["metric"] for r in doc["requests"][:4]] == ["p50", "p95", "p99", "error_rate"]
    assert doc["requests"][0]["request_type"] is None  # the requirement-wide rows come first
    json.dumps(doc, allow_nan=False)


# --- real runs -------------------------------------------------------------------------------

THRESHOLDS = """requirement: REQ-T-PASS
title: regression gate over a short run
load: {users: 10, spawn_rate: 10, duration: 6s, warmup: 1s}
thresholds:
  - metric: p95
    alert: ">5s"
  - metric: p50
    regression: ">10%"
  - metric: p95
    request: "GET /api/products"
    regression: ">10%"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs into one --out: A (normal), B (every latency x1.4, baseline last-pass = A),
    C (normal again, --baseline B). Returns (out, {name: (Result, run_dir)}, thresholds path)."""
    base = tmp_path_factory.mktemp("compare")
    out, th = base / "reports", base / "REQ-T-PASS.yaml"
    th.write_text(THRESHOLDS)
    got = {}

    def go(name: str, *args: str):
        before = set(out.iterdir()) if out.exists() else set()
        res = run_cli(
            "run",
            "--requirement",
            "REQ-T-PASS",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            str(th),
            "--out",
            str(out),
            *args,
        )
        new = sorted(p for p in set(out.iterdir()) - before if p.is_dir())
        assert len(new) == 1, res.stderr
        got[name] = (res, new[0])

    go("A")
    go("B", "--target-latency-scale", "1.4")
    go("C", "--baseline", str(got["B"][1]))
    return out, got, th


def test_first_run_has_no_baseline_so_regression_thresholds_are_skipped(runs):
    _, got, _ = runs
    res, run_dir = got["A"]
    assert res.code == 0, res.stderr
    statuses = [t["status"] for t in load(run_dir, "verdict.json")["thresholds"]]
    assert statuses == ["pass", "skipped", "skipped"]
    assert not (run_dir / "comparison.json").exists()


def test_40_percent_slower_run_fails_its_regression_threshold_against_the_last_pass(runs):
    _, got, _ = runs
    res, run_dir = got["B"]
    assert res.code == 1, res.stderr
    assert f"loadgate: baseline {got['A'][1].name} (last passing run of REQ-T-PASS in" in res.stderr
    p50 = load(run_dir, "verdict.json")["thresholds"][1]
    assert p50["status"] == "fail" and p50["value"] > 0.2 and p50["ci95"][0] > 0.10
    doc = load(run_dir, "comparison.json")
    assert doc["baseline"] == got["A"][1].name and doc["verdict"] == "fail"


def test_compare_finds_the_regression_between_two_real_runs(runs):
    _, got, _ = runs
    res = run_cli("compare", str(got["A"][1]), str(got["B"][1]), "--json")
    assert res.code == 1, res.stderr
    doc = json.loads(res.stdout)
    bad = {(r["name"], r["metric"]) for r in doc["requests"] if r["status"] == "regression"}
    assert ("/api/products", "p50") in bad and (None, "p50") in bad
    table = run_cli("compare", str(got["A"][1]), str(got["B"][1]))
    assert (
        table.code == 1 and "regression" in table.stdout and table.stdout.splitlines()[-1].startswith("verdict: FAIL")
    )


def test_a_run_compared_with_itself_finds_nothing(runs):
    _, got, _ = runs
    res = run_cli("compare", str(got["A"][1]), str(got["A"][1]), "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert {r["status"] for r in doc["requests"]} == {"unchanged"} and doc["verdict"] == "pass"
    assert all(r["change"] == 0 for r in doc["requests"] if r["change"] is not None)


def test_explicit_baseline_and_a_faster_run_is_an_improvement(runs):
    _, got, _ = runs
    res, run_dir = got["C"]
    assert res.code == 0, res.stderr
    assert [t["status"] for t in load(run_dir, "verdict.json")["thresholds"]] == ["pass", "pass", "pass"]
    doc = load(run_dir, "comparison.json")
    assert doc["baseline"] == got["B"][1].name
    assert {r["status"] for r in doc["requests"] if r["metric"] == "p50" and r["request_type"] is None} == {
        "improvement"
    }


def test_history_lists_the_runs_newest_first_with_their_baselines(runs):
    out, got, _ = runs
    res = run_cli("history", "--out", str(out), "--json")
    assert res.code == 0, res.stderr
    records = json.loads(res.stdout)
    assert [r["run_id"] for r in records] == [got[n][1].name for n in "CBA"]
    assert [r["kind"] for r in records] == ["run"] * 3
    assert [r["baseline"] for r in records] == [got["B"][1].name, got["A"][1].name, None]
    assert [r["verdict"] for r in records] == ["pass", "fail", "pass"]
    table = run_cli("history", "--out", str(out), "--requirement", "REQ-T-PASS")
    assert table.code == 0 and table.stdout.splitlines()[1].startswith(got["C"][1].name)


def test_gate_re_evaluation_is_recorded_and_keeps_last_pass_before_the_run(runs, tmp_path):
    out, got, th = runs
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    b = copy / got["B"][1].name
    res = run_cli("gate", str(b), "--thresholds", str(th))
    assert res.code == 1, res.stderr  # last-pass is A (C is newer than B), still 40% faster than B
    assert f"loadgate: baseline {got['A'][1].name}" in res.stderr
    records = json.loads(run_cli("history", "--out", str(copy), "--json").stdout)
    assert (records[0]["run_id"], records[0]["kind"], records[0]["verdict"]) == (b.name, "gate", "fail")


def test_compare_bad_input_exits_2(runs, tmp_path):
    _, got, _ = runs
    res = run_cli("compare", str(tmp_path / "nope"), str(got["A"][1]))
    assert res.code == 2 and res.error_lines == [
        f"loadgate compare: error: {tmp_path / 'nope'}: no such run directory; pass a folder written by "
        "'loadgate run' (e.g. reports/20260101T120000Z-REQ-PERF-001)"
    ]
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(tmp_path / "o"),
        "--baseline",
        str(tmp_path),
    )
    assert res.code == 2 and res.error_lines == [
        f"loadgate run: error: --baseline {tmp_path}: not a run directory (no summary.json); pass a folder "
        "written by 'loadgate run' or 'last-pass'"
    ]
    assert not (tmp_path / "o").exists()  # nothing was run

"""The gate: statuses at the boundaries, scope matching, precedence, strict mode, regression, with hand answers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from loadgate.errors import ConfigError
from loadgate.gate.verdict import SCHEMA, Verdict, evaluate, format_value
from loadgate.gate.thresholds import ThresholdFile, load_threshold_file


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def files(*docs: str) -> dict[str, ThresholdFile]:
    """Threshold files from YAML texts (written as a<i>.yaml), keyed by requirement."""
    out = {}
    for i, doc in enumerate(docs):
        path = Path(f"a{i}.yaml")
        path.write_text(textwrap.dedent(doc).lstrip("\n"), encoding="utf-8")
        tf = load_threshold_file(str(path))
        out[tf.requirement] = tf
    return out


def req(items: str, requirement: str = "REQ-A-1", load: str = "") -> str:
    return (
        f"requirement: {requirement}\n{load}thresholds:\n"
        + textwrap.indent(textwrap.dedent(items).strip("\n"), "  ")
        + "\n"
    )


def stats(requests: int = 1000, failures: int = 0, throughput: float = 100.0, **times: float) -> dict:
    rt = {"min": 1.0, "mean": 50.0, "p50": 40.0, "p90": 90.0, "p95": 100.0, "p99": 150.0, "p99.9": 190.0, "max": 200.0}
    rt.update({k.replace("_", "."): v for k, v in times.items()})
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else 0.0,
        "throughput": throughput,
        "response_time_ms": rt,
    }


def summary(requirements: dict | None = None, requests: list | None = None) -> dict:
    return {
        "schema": "loadgate.summary/1",
        "window": {"start": 0.0, "end": 10.0, "seconds": 10.0},
        "overall": stats(),
        "requirements": requirements or {},
        "requests": requests or [],
    }


def entry(request_type: str, name: str, requirement: str = "REQ-A-1", **kw) -> dict:
    return {"request_type": request_type, "name": name, "requirement": requirement, **stats(**kw)}


P95 = req('- {metric: p95, target: "<200ms", alert: ">500ms"}')


def status_of(doc: str, st: dict, **kw) -> str:
    (r,) = evaluate(files(doc), summary({"REQ-A-1": st}), **kw).thresholds
    return r.status


# --- statuses at the boundaries --------------------------------------------------------------


@pytest.mark.parametrize(
    "p95, expected",
    [
        (0.0, "pass"),
        (199.9, "pass"),
        (200.0, "warn"),
        (200.1, "warn"),
        (500.0, "warn"),
        (500.1, "fail"),
        (10_000.0, "fail"),
    ],
)
def test_strict_operators(p95, expected):
    assert status_of(P95, stats(p95=p95)) == expected


@pytest.mark.parametrize("p95, expected", [(200.0, "pass"), (200.1, "warn"), (499.9, "warn"), (500.0, "fail")])
def test_inclusive_operators(p95, expected):
    doc = req('- {metric: p95, target: "<=200ms", alert: ">=500ms"}')
    assert status_of(doc, stats(p95=p95)) == expected


@pytest.mark.parametrize(
    "tput, expected",
    [(2000.0, "pass"), (1000.1, "pass"), (1000.0, "warn"), (500.0, "warn"), (499.9, "fail"), (0.0, "fail")],
)
def test_throughput_higher_is_better(tput, expected):
    doc = req('- {metric: throughput, target: ">1000/s", alert: "<500/s"}')
    assert status_of(doc, stats(throughput=tput)) == expected


@pytest.mark.parametrize("failures, expected", [(0, "pass"), (9, "pass"), (10, "warn"), (100, "warn"), (101, "fail")])
def test_error_rate_percent_levels(failures, expected):
    # 10 000 requests: 10 failures = 0.1% exactly (target <0.1% missed), 100 = 1% exactly (alert >1% not crossed)
    doc = req('- {metric: error_rate, target: "<0.1%", alert: ">1%"}')
    assert status_of(doc, stats(requests=10_000, failures=failures)) == expected


@pytest.mark.parametrize(
    "doc, value, expected",
    [
        ('- {metric: p99, alert: ">800ms"}', 800.0, "pass"),
        ('- {metric: p99, alert: ">800ms"}', 800.5, "fail"),
        ('- {metric: p99, target: "<800ms"}', 800.0, "warn"),
        ('- {metric: p99, target: "<800ms"}', 10_000.0, "warn"),  # target only: never fails
        ('- {metric: p99, target: "<0.8s"}', 799.0, "pass"),
    ],
)
def test_alert_only_and_target_only(doc, value, expected):
    assert status_of(req(doc), stats(p99=value)) == expected


def test_every_time_metric_reads_its_own_field():
    doc = req("""
        - {metric: min, alert: ">1ms"}
        - {metric: mean, alert: ">50ms"}
        - {metric: max, alert: ">199ms"}
        - {metric: p99.9, alert: ">190ms"}
        - {metric: p75, alert: ">70ms"}
        """)
    v = evaluate(files(doc), summary({"REQ-A-1": stats(p75=70.5)}))
    assert [(r.metric, r.value, r.status) for r in v.thresholds] == [
        ("min", 1.0, "pass"),
        ("mean", 50.0, "pass"),
        ("max", 200.0, "fail"),
        ("p99.9", 190.0, "pass"),
        ("p75", 70.5, "fail"),
    ]


def test_reasons_name_value_level_and_source():
    doc = req("""
        - {metric: p95, target: "<200ms", alert: ">500ms"}
        - {metric: error_rate, target: "<1%", alert: ">5%"}
        - {metric: throughput, target: ">1000/s"}
        """)
    v = evaluate(files(doc), summary({"REQ-A-1": stats(requests=1000, failures=20, throughput=412.46, p95=612.34)}))
    assert v.reasons == (
        "REQ-A-1 p95 = 612.3 ms crossed alert >500ms (a0.yaml:3)",
        "REQ-A-1 error_rate = 2.00% missed target <1% (a0.yaml:4)",
        "REQ-A-1 throughput = 412.5 req/s missed target >1000/s (a0.yaml:5)",
    )
    assert [r.reason for r in v.thresholds] == list(v.reasons)


# --- inconclusive ----------------------------------------------------------------------------


def test_fewer_requests_than_min_requests_is_inconclusive_and_keeps_the_value():
    doc = req('- {metric: p95, alert: ">500ms", min_requests: 500}')
    v = evaluate(files(doc), summary({"REQ-A-1": stats(requests=499, p95=9999.0)}))
    (r,) = v.thresholds
    assert (r.status, r.value, r.requests) == ("inconclusive", 9999.0, 499)
    assert r.reason == "REQ-A-1 p95: 499 requests in the window, fewer than min_requests 500 (a0.yaml:3)"
    assert (v.verdict, v.exit_code) == ("inconclusive", 3)
    assert status_of(doc, stats(requests=500, p95=100.0)) == "pass"


def test_zero_requests_is_never_a_pass():
    (r,) = evaluate(files(P95), summary({"REQ-A-1": stats(requests=0)})).thresholds
    assert (r.status, r.value, r.requests) == ("inconclusive", None, 0)


def test_requirement_absent_from_summary_is_inconclusive_with_zero_requests():
    v = evaluate(files(P95), summary({"REQ-OTHER-1": stats()}), requirements=["REQ-A-1"])
    (r,) = v.thresholds
    assert (r.status, r.requests, r.value) == ("inconclusive", 0, None)
    assert r.reason == "REQ-A-1 p95: no requests recorded for REQ-A-1 in the analysis window (a0.yaml:3)"
    assert (v.verdict, v.exit_code) == ("inconclusive", 3)


def test_missing_percentile_in_summary_is_inconclusive():
    (r,) = evaluate(files(req('- {metric: p75, alert: ">1s"}')), summary({"REQ-A-1": stats()})).thresholds
    assert r.status == "inconclusive"
    assert r.reason == "REQ-A-1 p75: the summary has no p75 for this scope (analysis did not compute it) (a0.yaml:3)"


# --- request scope ---------------------------------------------------------------------------

SCOPED = req('- {metric: p99, request: "GET /api/users/[id]", alert: ">800ms"}')


def test_request_matches_type_and_name_within_its_requirement():
    s = summary(
        {"REQ-A-1": stats(p99=10.0)},
        [
            entry("GET", "/api/users/[id]", p99=900.0),
            entry("POST", "/api/users/[id]", p99=1.0),
            entry("GET", "/api/users/[id]", requirement="REQ-B-1", p99=1.0),
        ],
    )
    (r,) = evaluate(files(SCOPED), s).thresholds
    assert (r.request, r.value, r.status) == ("GET /api/users/[id]", 900.0, "fail")


def test_request_in_a_comma_joined_requirement_entry():
    s = summary({"REQ-A-1": stats()}, [entry("GET", "/api/users/[id]", requirement="REQ-B-1,REQ-A-1", p99=10.0)])
    assert evaluate(files(SCOPED), s).thresholds[0].status == "pass"


def test_request_without_type_matches_by_name_and_reports_ambiguity():
    doc = req('- {metric: p99, request: "/x", alert: ">800ms"}')
    one = summary({"REQ-A-1": stats()}, [entry("GET", "/x", p99=900.0), entry("GET", "/y", p99=1.0)])
    assert evaluate(files(doc), one).thresholds[0].status == "fail"
    two = summary({"REQ-A-1": stats()}, [entry("GET", "/x", p99=900.0), entry("POST", "/x", p99=1.0)])
    (r,) = evaluate(files(doc), two).thresholds
    assert (r.status, r.requests, r.value) == ("inconclusive", 0, None)
    assert r.reason == (
        "REQ-A-1 p99 [/x]: request '/x' is ambiguous: it was sent as GET, POST; name one in the "
        "threshold, like GET /x (a0.yaml:3)"
    )


def test_unknown_request_is_inconclusive_with_a_hint():
    s = summary({"REQ-A-1": stats()}, [entry("GET", "/api/users/[uid]")])
    (r,) = evaluate(files(SCOPED), s).thresholds
    assert r.status == "inconclusive"
    assert r.reason == (
        "REQ-A-1 p99 [GET /api/users/[id]]: no request 'GET /api/users/[id]' recorded for REQ-A-1 in "
        "the analysis window (did you mean 'GET /api/users/[uid]'?) (a0.yaml:3)"
    )


# --- verdict, precedence, strict, problems ---------------------------------------------------


def verdict_for(*values: float, strict: bool = False, problems=()) -> Verdict:
    """One p95 threshold per value (target <200, alert >500, min_requests 10); 0 means too few requests."""
    docs = [
        req('- {metric: p95, target: "<200ms", alert: ">500ms", min_requests: 10}', f"REQ-R-{i}")
        for i in range(len(values))
    ]
    reqs = {f"REQ-R-{i}": stats(requests=0 if v == 0 else 100, p95=v) for i, v in enumerate(values)}
    return evaluate(files(*docs), summary(reqs), strict=strict, problems=problems)


@pytest.mark.parametrize(
    "values, verdict, code",
    [
        ((100.0,), "pass", 0),
        ((300.0,), "warn", 0),
        ((600.0,), "fail", 1),
        ((0,), "inconclusive", 3),
        ((100.0, 300.0), "warn", 0),
        ((300.0, 0), "inconclusive", 3),
        ((0, 600.0), "fail", 1),
        ((600.0, 300.0, 0, 100.0), "fail", 1),
    ],
)
def test_precedence_fail_over_inconclusive_over_warn(values, verdict, code):
    v = verdict_for(*values)
    assert (v.verdict, v.exit_code) == (verdict, code)


@pytest.mark.parametrize(
    "values, verdict, code",
    [((100.0,), "pass", 0), ((300.0,), "fail", 1), ((300.0, 0), "fail", 1), ((0, 100.0), "inconclusive", 3)],
)
def test_strict_counts_warn_as_fail_but_keeps_the_threshold_status(values, verdict, code):
    v = verdict_for(*values, strict=True)
    assert (v.verdict, v.exit_code, v.strict) == (verdict, code, True)
    assert "fail" not in {r.status for r in v.thresholds}


def test_run_problems_are_reasons_and_make_the_verdict_at_least_inconclusive():
    v = verdict_for(100.0, problems=["interrupted by SIGTERM", "load generator saturated"])
    assert (v.verdict, v.exit_code) == ("inconclusive", 3)
    assert v.reasons == ("interrupted by SIGTERM", "load generator saturated")
    assert v.problems == v.reasons
    v = verdict_for(600.0, problems=["interrupted by SIGTERM"])
    assert (v.verdict, v.exit_code) == ("fail", 1)
    assert v.reasons[0] == "interrupted by SIGTERM" and "crossed alert" in v.reasons[1]


def test_run_level_min_requests_is_a_problem():
    doc = req('- {metric: p95, alert: ">500ms"}', load="load: {min_requests: 1000}\n")
    v = evaluate(files(doc), summary({"REQ-A-1": stats(requests=999)}))
    assert v.thresholds[0].status == "pass"
    assert (v.verdict, v.exit_code) == ("inconclusive", 3)
    assert v.problems == ("REQ-A-1: 999 requests in the window, fewer than load.min_requests 1000 (a0.yaml)",)
    assert evaluate(files(doc), summary({"REQ-A-1": stats(requests=1000)})).verdict == "pass"


def test_default_requirements_are_those_in_the_summary_and_asked_ones_must_have_files():
    fs = files(req('- {metric: p95, alert: ">500ms"}', "REQ-A-1"), req('- {metric: p95, alert: ">1ms"}', "REQ-B-1"))
    v = evaluate(fs, summary({"REQ-A-1": stats()}))
    assert [r.requirement for r in v.thresholds] == ["REQ-A-1"] and v.verdict == "pass"
    assert [
        r.requirement for r in evaluate(fs, summary({"REQ-A-1": stats()}), requirements=["REQ-B-1"]).thresholds
    ] == ["REQ-B-1"]
    with pytest.raises(ConfigError) as exc:
        evaluate(fs, summary(), requirements=["REQ-C-1"])
    assert str(exc.value) == "REQ-C-1: no threshold file defines this requirement; expected one of REQ-A-1, REQ-B-1"


def test_no_thresholds_to_evaluate_is_inconclusive():
    v = evaluate(files(P95), summary({"REQ-OTHER-1": stats()}))
    assert (v.verdict, v.exit_code, v.thresholds) == ("inconclusive", 3, ())
    assert v.reasons == (
        "no thresholds to evaluate: no threshold file matches the requirements in the summary (REQ-OTHER-1)",
    )
    assert evaluate({}, summary(), requirements=[]).verdict == "inconclusive"


# --- regression ------------------------------------------------------------------------------

REGRESSION = req("""
    - {metric: p95, alert: ">500ms"}
    - {metric: p95, regression: ">10%"}
    """)


def test_regression_without_baseline_is_skipped_and_does_not_change_the_verdict():
    v = evaluate(files(REGRESSION), summary({"REQ-A-1": stats(p95=100.0)}))
    absolute, relative = v.thresholds
    assert (absolute.status, relative.status, relative.value, relative.unit) == ("pass", "skipped", None, "ratio")
    assert relative.reason == ("no baseline run yet for REQ-A-1: regression threshold skipped (p95 >10%) (a0.yaml:4)")
    assert (v.verdict, v.exit_code) == ("pass", 0)
    assert v.reasons == (relative.reason,)


@pytest.mark.parametrize("current, expected", [(110.0, "pass"), (110.1, "fail"), (50.0, "pass")])
def test_regression_against_a_baseline_is_the_relative_change(current, expected):
    base = summary({"REQ-A-1": stats(p95=100.0)})
    v = evaluate(files(REGRESSION), summary({"REQ-A-1": stats(p95=current)}), baseline=base)
    r = v.thresholds[1]
    assert r.status == expected
    assert r.value == pytest.approx((current - 100.0) / 100.0) and r.baseline == 100.0 and r.unit == "ratio"
    assert v.verdict == expected


def test_throughput_regression_is_a_drop():
    doc = req('- {metric: throughput, regression: ">=20%"}')
    base = summary({"REQ-A-1": stats(throughput=1000.0)})
    drop = evaluate(files(doc), summary({"REQ-A-1": stats(throughput=800.0)}), baseline=base).thresholds[0]
    assert (drop.value, drop.status) == (pytest.approx(0.2), "fail")
    assert drop.reason == (
        "REQ-A-1 throughput = 800.0 req/s vs baseline 1000.0 req/s (+20.0% worse) crossed regression >=20% (a0.yaml:3)"
    )
    rise = evaluate(files(doc), summary({"REQ-A-1": stats(throughput=1500.0)}), baseline=base).thresholds[0]
    assert (rise.value, rise.status) == (pytest.approx(-0.5), "pass")


def test_regression_with_a_zero_baseline_is_skipped():
    doc = req('- {metric: error_rate, regression: ">10%"}')
    base = summary({"REQ-A-1": stats(failures=0)})
    (r,) = evaluate(files(doc), summary({"REQ-A-1": stats(failures=5)}), baseline=base).thresholds
    assert r.status == "skipped" and "baseline value is 0" in r.reason


# --- confidence interval ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "ci, borderline", [([480.0, 520.0], True), ([510.0, 600.0], False), ([150.0, 250.0], True), ([10.0, 20.0], False)]
)
def test_ci95_is_reported_and_borderline_when_it_straddles_a_level(ci, borderline):
    st = stats(p95=(ci[0] + ci[1]) / 2)
    st["response_time_ci95_ms"] = {"p95": ci}
    (r,) = evaluate(files(P95), summary({"REQ-A-1": st})).thresholds
    d = r.to_dict()
    assert d["ci95"] == ci and d["borderline"] is borderline
    assert r.status == ("fail" if d["value"] > 500 else "warn" if d["value"] >= 200 else "pass")


def test_no_ci95_keys_without_an_interval():
    (r,) = evaluate(files(P95), summary({"REQ-A-1": stats()})).thresholds
    assert "ci95" not in r.to_dict() and "borderline" not in r.to_dict()


# --- serialisation ---------------------------------------------------------------------------


def test_verdict_dict_follows_schema_8():
    v = evaluate(files(P95), summary({"REQ-A-1": stats(requests=12345, p95=123.4)}))
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d == {
        "schema": SCHEMA,
        "verdict": "pass",
        "exit_code": 0,
        "reasons": [],
        "strict": False,
        "thresholds": [
            {
                "requirement": "REQ-A-1",
                "metric": "p95",
                "request": None,
                "target": "<200ms",
                "alert": ">500ms",
                "value": 123.4,
                "unit": "ms",
                "requests": 12345,
                "status": "pass",
                "reason": None,
                "source": "a0.yaml:3",
                "latency": "service",
            }
        ],
    }
    assert SCHEMA == "loadgate.verdict/1"


def test_format_value():
    assert [format_value(v, "ratio") for v in (0, 0.002, 0.0123, 0.25, 1.0, 0.000456, 1e-7)] == [
        "0%",
        "0.200%",
        "1.23%",
        "25.0%",
        "100%",
        "0.0456%",
        "<0.001%",
    ]
    assert format_value(0.1, "ratio", signed=True) == "+10.0%" and format_value(-0.5, "ratio") == "-50.0%"
    assert (format_value(612.34, "ms"), format_value(412.46, "req/s"), format_value(None, "ms")) == (
        "612.3 ms",
        "412.5 req/s",
        "-",
    )
    assert format_value(float("nan"), "ms") == "-"

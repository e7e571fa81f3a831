"""analysis: exactness against numpy (property tests), hand-computed stats, windows, the text table."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgate.analysis import ci, memory, select
from loadgate.analysis import summary as summary_mod
from loadgate.analysis.summary import DEFAULT_PERCENTILES, summarize
from loadgate.analysis.table import format_summary_table
from loadgate.analysis.window import Window, parse_window

T0 = 1_764_000_000.0
TYPES = {
    "timestamp": pa.float64(),
    "request_type": pa.string(),
    "name": pa.string(),
    "response_time_ms": pa.float64(),
    "success": pa.bool_(),
    "requirement": pa.string(),
    "users": pa.int32(),
}
REQ_LABELS = ["REQ-A-1", "REQ-B-2", "REQ-A-1,REQ-B-2", "", "REQ-C-3,REQ-A-1"]


def make_table(ts, rt, name, value, ok, req=None, users=None, batches=1, dictionary=False) -> pa.Table:
    """A samples table, optionally split in batches that each carry their own dictionaries."""
    cols = {
        "timestamp": np.asarray(ts, float),
        "request_type": list(rt),
        "name": list(name),
        "response_time_ms": np.asarray(value, float),
        "success": np.asarray(ok, bool),
    }
    if req is not None:
        cols["requirement"] = list(req)
    if users is not None:
        cols["users"] = np.asarray(users, np.int32)
    n = len(cols["timestamp"])
    cuts = np.linspace(0, n, batches + 1).astype(int)
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        arrays = {k: pa.array(v[a:b], TYPES[k]) for k, v in cols.items()}
        if dictionary:
            arrays = {k: v.dictionary_encode() if pa.types.is_string(v.type) else v for k, v in arrays.items()}
        parts.append(pa.table(arrays))
    return pa.concat_tables(parts, promote_options="permissive")


def reference(ts, rt, name, value, ok, req, window, qs):
    """Brute force: per scope, the in-window values, failures and numpy percentiles."""
    ts, value, ok = np.asarray(ts, float), np.asarray(value, float), np.asarray(ok, bool)
    inside = (ts >= window.start) & (ts <= window.end)
    ids = [tuple(dict.fromkeys(p for p in r.split(",") if p)) for r in req]
    scopes: dict[tuple, list[int]] = {}
    for i in np.flatnonzero(inside):
        scopes.setdefault(("overall",), []).append(i)
        for rid in ids[i]:
            scopes.setdefault(("requirement", rid), []).append(i)
        for rid in ids[i] or (None,):
            scopes.setdefault(("request", rt[i], name[i], rid), []).append(i)
    out = {}
    for key, rows in scopes.items():
        x = value[rows]
        out[key] = {
            "requests": len(rows),
            "failures": int((~ok[rows]).sum()),
            "x": x,
            "pct": {select.pkey(q): np.percentile(x, q) for q in qs},
        }
    return out


def scopes_of(summary):
    """The summary's STATS keyed like ``reference``."""
    out = {("overall",): summary["overall"]} if summary["overall"]["requests"] else {}
    out.update({("requirement", r): s for r, s in summary["requirements"].items() if s["requests"]})
    out.update({("request", e["request_type"], e["name"], e["requirement"]): e for e in summary["requests"]})
    return out


values_kind = st.sampled_from(["lognormal", "ties", "rounded", "constant", "signed", "tiny", "huge"])


def draw_values(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "lognormal":
        return rng.lognormal(3, 1.5, n)
    if kind == "ties":
        return rng.integers(0, 5, n).astype(float)
    if kind == "rounded":  # Locust's CSV logger rounds to 2 decimals
        return np.round(rng.lognormal(2, 1, n), 2)
    if kind == "constant":
        return np.full(n, 12.5)
    if kind == "signed":
        return rng.normal(0, 100, n) * rng.choice([1.0, 0.0, -0.0], n)
    if kind == "tiny":
        return rng.random(n) * 1e-300
    return rng.lognormal(0, 40, n)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
    kind=values_kind,
    groups=st.integers(1, 4),
    cut=st.sampled_from(["none", "inside", "edges", "empty"]),
    batches=st.integers(1, 4),
    chunk_rows=st.sampled_from([1 << 20, 7, 300]),
    budget=st.sampled_from([1 << 20, 64, 1]),
    dictionary=st.booleans(),
    extra=st.lists(st.sampled_from([0.0, 100.0, 12.5, 75.0, 99.99, 33.3]), max_size=3, unique=True),
)
def test_percentiles_equal_numpy_bit_for_bit(
    n, seed, kind, groups, cut, batches, chunk_rows, budget, dictionary, extra
):
    rng = np.random.default_rng(seed)
    ts = T0 + np.round(rng.random(n) * 60, 3)
    rt = rng.choice(["GET", "POST"][: max(1, groups // 2)], n).tolist()
    name = rng.choice(["/a", "/b", "/c", "/d"][:groups], n).tolist()
    req = rng.choice(REQ_LABELS, n).tolist()
    value, ok = draw_values(kind, n, rng), rng.random(n) > 0.2
    lo, hi = float(ts.min()), float(ts.max())
    window = {
        "none": None,
        "inside": Window(lo + (hi - lo) / 4, hi - (hi - lo) / 3),
        "edges": Window(float(np.sort(ts)[n // 3]), float(np.sort(ts)[(2 * n) // 3])),
        "empty": Window(hi + 1, hi + 2),
    }[cut]
    qs = tuple(DEFAULT_PERCENTILES) + tuple(extra)
    table = make_table(ts, rt, name, value, ok, req, batches=batches, dictionary=dictionary)
    with mock.patch.object(summary_mod, "_CHUNK_ROWS", chunk_rows), mock.patch.object(select, "_BIN_BUDGET", budget):
        summary = summarize(table, window, percentiles=qs)
    expected = reference(ts, rt, name, value, ok, req, window or Window(lo, hi), qs)
    got = scopes_of(summary)
    assert set(got) == set(expected)
    for key, want in expected.items():
        stats = got[key]
        assert (stats["requests"], stats["failures"]) == (want["requests"], want["failures"]), key
        times = stats["response_time_ms"]
        for k, p in want["pct"].items():
            assert times[k] == p, (key, k, times[k], p)
        assert times["min"] == want["x"].min() and times["max"] == want["x"].max()
        assert math.isclose(times["mean"], want["x"].mean(), rel_tol=1e-9, abs_tol=1e-300) or not np.isfinite(
            want["x"].mean()
        )
    check_series(summary, ts, value, ok, req, window or Window(lo, hi))


def check_series(summary, ts, value, ok, req, window, users=None):
    """Every per-second bucket matches numpy on the samples of that second (and the peak user count)."""
    series = summary["series"]
    n_sec = len(series["t"])
    assert n_sec == max(1, math.ceil(window.seconds))
    inside = (ts >= window.start) & (ts <= window.end)
    second = np.minimum(np.floor(ts - window.start), n_sec - 1)
    for rid, by in [(None, series)] + list(summary["series_by_requirement"].items()):
        mine = inside & np.array([rid is None or rid in r.split(",") for r in req])
        for i in range(n_sec):
            x = value[mine & (second == i)]
            assert by["requests"][i] == x.size
            assert by["failures"][i] == int((~ok[mine & (second == i)]).sum())
            for q in (50, 95, 99):
                assert by[f"p{q}"][i] == (np.percentile(x, q) if x.size else None)
            if users is not None:
                u = np.asarray(users)[mine & (second == i)]
                assert by["users"][i] == (int(u.max()) if u.size else None), (rid, i)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=60),
    q=st.floats(0, 100).map(lambda q: round(q, 4)),
)
def test_any_float_values_and_percentile(values, q):
    table = make_table([T0] * len(values), ["GET"] * len(values), ["/"] * len(values), values, [True] * len(values))
    key = select.pkey(q)
    got = summarize(table, percentiles=[q], series=False)["overall"]["response_time_ms"][key]
    assert got == np.percentile(np.array(values), q) or (np.isnan(got) and np.isnan(np.percentile(values, q)))


def test_hand_computed_stats_error_rate_throughput_window():
    table = make_table(
        [T0, T0 + 1, T0 + 2, T0 + 3],
        ["GET"] * 4,
        ["/x"] * 4,
        [10, 20, 30, 40],
        [True, False, True, True],
        ["REQ-A-1"] * 4,
        users=[1, 2, 2, 3],
    )
    s = summarize(table)
    assert s["schema"] == "loadgate.summary/1" and s["percentile_method"] == "linear"
    assert s["window"] == {"start": T0, "end": T0 + 3, "seconds": 3.0}
    overall = s["overall"]
    assert (overall["requests"], overall["failures"], overall["error_rate"]) == (4, 1, 0.25)
    assert overall["throughput"] == 4 / 3
    assert overall["response_time_ms"] == pytest.approx(
        {"min": 10.0, "mean": 25.0, "p50": 25.0, "p90": 37.0, "p95": 38.5, "p99": 39.7, "p99.9": 39.97, "max": 40.0}
    )
    assert overall["response_time_ms"]["p99"] == np.percentile([10, 20, 30, 40], 99)
    assert s["requirements"]["REQ-A-1"] == overall
    assert s["requests"] == [{"request_type": "GET", "name": "/x", "requirement": "REQ-A-1", **overall}]
    assert s["series"]["t"] == [T0, T0 + 1, T0 + 2]
    assert s["series"]["requests"] == [1, 1, 2]  # the sample at the window's end joins the last second
    assert s["series"]["failures"] == [0, 1, 0]
    assert s["series"]["users"] == [1, 2, 3]
    assert s["series"]["p50"] == [10.0, 20.0, 35.0]

    w = summarize(table, parse_window("1s:2s", T0, T0 + 3))
    assert w["window"] == {"start": T0 + 1, "end": T0 + 2, "seconds": 1.0}
    assert (w["overall"]["requests"], w["overall"]["failures"], w["overall"]["throughput"]) == (2, 1, 2.0)
    assert w["overall"]["error_rate"] == 0.5


def test_comma_joined_requirement_counts_once_overall_and_once_per_requirement():
    table = make_table(
        [T0, T0 + 1, T0 + 2],
        ["GET"] * 3,
        ["/login", "/x", "/x"],
        [5, 7, 9],
        [True] * 3,
        ["REQ-A-1,REQ-B-2", "REQ-A-1", "REQ-B-2"],
    )
    s = summarize(table)
    assert s["overall"]["requests"] == 3
    assert {r: v["requests"] for r, v in s["requirements"].items()} == {"REQ-A-1": 2, "REQ-B-2": 2}
    assert [(e["name"], e["requirement"], e["requests"]) for e in s["requests"]] == [
        ("/login", "REQ-A-1", 1),
        ("/login", "REQ-B-2", 1),
        ("/x", "REQ-A-1", 1),
        ("/x", "REQ-B-2", 1),
    ]


def test_requirements_argument_limits_section_and_lists_absent_ids_with_zero_stats():
    table = make_table([T0, T0 + 1], ["GET"] * 2, ["/x"] * 2, [5, 7], [True, True], ["REQ-A-1", "REQ-B-2"])
    s = summarize(table, requirements=["REQ-B-2", "REQ-Z-9"])
    assert list(s["requirements"]) == ["REQ-B-2", "REQ-Z-9"]
    assert s["requirements"]["REQ-Z-9"] == {
        "requests": 0,
        "failures": 0,
        "error_rate": 0.0,
        "throughput": 0.0,
        "response_time_ms": dict.fromkeys(["min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"]),
        "response_time_ci95_ms": dict.fromkeys(["p50", "p90", "p95", "p99", "p99.9"]),
    }
    assert s["overall"]["requests"] == 2 and len(s["requests"]) == 2
    assert list(s["series_by_requirement"]) == ["REQ-B-2", "REQ-Z-9"]
    assert s["series_by_requirement"]["REQ-Z-9"]["requests"] == [0]


def test_without_requirement_column_only_overall_and_requests_with_null_requirement():
    table = make_table([T0, T0 + 2], ["GET", "POST"], ["/a", "/a"], [1, 2], [True, False])
    s = summarize(table)
    assert s["requirements"] == {} and s["series_by_requirement"] == {}
    assert [(e["request_type"], e["requirement"]) for e in s["requests"]] == [("GET", None), ("POST", None)]
    assert s["overall"]["failures"] == 1 and s["series"]["users"] == [None, None]


def test_no_samples_in_window_gives_zero_stats():
    table = make_table([T0], ["GET"], ["/"], [1.0], [True])
    s = summarize(table, Window(T0 + 10, T0 + 20))
    assert s["overall"]["requests"] == 0 and s["overall"]["response_time_ms"]["p95"] is None
    assert s["requests"] == [] and s["overall"]["throughput"] == 0.0
    empty = summarize(table.slice(0, 0))
    assert empty["window"] == {"start": 0.0, "end": 0.0, "seconds": 0.0}
    assert empty["overall"]["requests"] == 0


def test_timestamps_without_a_value_stay_out_of_the_default_window():
    table = make_table([T0 + 5, np.nan, T0 + 1, np.nan], ["GET"] * 4, ["/"] * 4, [1.0, 2.0, 3.0, 4.0], [True] * 4)
    s = summarize(table)
    assert s["window"] == {"start": T0 + 1, "end": T0 + 5, "seconds": 4.0} and s["overall"]["requests"] == 2
    only_nan = summarize(make_table([np.nan, np.nan], ["GET"] * 2, ["/"] * 2, [1.0, 2.0], [True] * 2))
    assert only_nan["window"]["seconds"] == 0.0 and only_nan["overall"]["requests"] == 0


def test_same_summary_where_the_c_library_is_not_glibc():
    table = make_table(T0 + np.arange(50) / 10, ["GET"] * 50, ["/"] * 50, np.arange(50.0), [True] * 50)
    tuned = summarize(table)
    with mock.patch.object(memory, "_glibc", return_value=None):  # no mallopt: nothing else changes
        assert summarize(table) == tuned


def test_single_sample_and_zero_length_window():
    s = summarize(make_table([T0], ["GET"], ["/"], [3.25], [True]))
    assert s["window"]["seconds"] == 0.0 and s["overall"]["throughput"] == 0.0
    assert set(s["overall"]["response_time_ms"].values()) == {3.25}
    assert s["overall"]["response_time_ci95_ms"] == dict.fromkeys(["p50", "p90", "p95", "p99", "p99.9"])


def test_missing_response_times_count_as_requests_but_not_in_percentiles():
    table = make_table([T0, T0 + 1, T0 + 2], ["GET"] * 3, ["/"] * 3, [1.0, np.nan, 3.0], [True, False, True])
    s = summarize(table)
    assert (s["overall"]["requests"], s["overall"]["failures"]) == (3, 1)
    assert s["overall"]["response_time_ms"]["p50"] == 2.0 and s["overall"]["response_time_ms"]["mean"] == 2.0


def test_confidence_interval_ranks_match_binomial_quantiles():
    import scipy.stats as scipy_stats  # an independent oracle for the order-statistic ranks (test extra)

    for n in (1, 5, 20, 59, 100, 1000, 3687, 10_000, 123_457, 10_000_000):
        for q in DEFAULT_PERCENTILES:
            p = q / 100
            lo, hi = int(scipy_stats.binom.ppf(0.025, n, p)) - 1, int(scipy_stats.binom.ppf(0.975, n, p))
            want = (lo, hi) if lo >= 0 and hi <= n - 1 else (-1, -1)
            assert ci.ci_ranks(n, q) == want, (n, q)


def test_confidence_interval_values_are_order_statistics_around_the_percentile():
    rng = np.random.default_rng(7)
    x = rng.lognormal(3, 1, 5000)
    s = summarize(make_table(T0 + np.arange(5000) / 100, ["GET"] * 5000, ["/"] * 5000, x, [True] * 5000))
    ordered = np.sort(x)
    for key, (lo, hi) in s["overall"]["response_time_ci95_ms"].items():
        q = float(key[1:])
        r_lo, r_hi = ci.ci_ranks(5000, q)
        assert (lo, hi) == (ordered[r_lo], ordered[r_hi])
        assert lo <= s["overall"]["response_time_ms"][key] <= hi
    # median of 5000: ranks 2431..2570 (1-based), the binomial(5000, 0.5) 2.5%/97.5% quantiles 2431 and 2569
    assert s["overall"]["response_time_ci95_ms"]["p50"] == [ordered[2430], ordered[2569]]
    assert ci.ci_ranks(100, 50.0) == (39, 60)  # the textbook interval for n=100: 40th..61st value


def test_extra_percentile_keys_and_bad_percentile():
    table = make_table([T0, T0 + 1], ["GET"] * 2, ["/"] * 2, [1.0, 2.0], [True, True])
    times = summarize(table, percentiles=[75, 99.99, 0], series=False)["overall"]["response_time_ms"]
    assert list(times) == ["min", "mean", "p75", "p99.99", "p0", "max"]
    assert "series" not in summarize(table, series=False)
    for bad in (101, -1, 99.99999999):  # the last would be reported as "p100"
        with pytest.raises(ValueError, match="percentiles must be within 0..100 with at most 6 significant"):
            summarize(table, percentiles=[bad])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("30s:2m", Window(T0 + 30, T0 + 120)),
        ("30:", Window(T0 + 30, T0 + 600)),
        (":90", Window(T0, T0 + 90)),
        (":", Window(T0, T0 + 600)),
        ("1m30s:5m", Window(T0 + 90, T0 + 300)),
        (f"{T0 + 10:.0f}:{T0 + 20:.0f}", Window(T0 + 10, T0 + 20)),
        (f"10s:{T0 + 20:.1f}", Window(T0 + 10, T0 + 20)),
    ],
)
def test_parse_window(text, expected):
    assert parse_window(text, T0, T0 + 600) == expected
    assert expected.seconds == expected.end - expected.start


@pytest.mark.parametrize("text", ["abc", "1:2:3", "30s", "-5s:", "2m:30s", "5x:"])
def test_parse_window_rejects_garbage_and_reversed(text):
    with pytest.raises(ValueError, match="START:END"):
        parse_window(text, T0, T0 + 600)


def test_format_summary_table():
    table = make_table(
        [T0, T0 + 1, T0 + 2, T0 + 3],
        ["GET", "GET", "POST", "GET"],
        ["/a", "/a", "/b", "/a"],
        [10, 20, 30, 40],
        [True, False, True, True],
        ["REQ-A-1"] * 4,
    )
    text = format_summary_table(summarize(table))
    lines = text.splitlines()
    assert lines[0] == "Window: 2025-11-24 16:00:00 → 2025-11-24 16:00:03 UTC (3.0 s), response times in ms"
    assert lines[1].split() == [
        "Type",
        "Name",
        "Requirement",
        "Requests",
        "Fails",
        "Err%",
        "Req/s",
        "p50",
        "p95",
        "p99",
        "Max",
    ]
    assert lines[3].split() == ["GET", "/a", "REQ-A-1", "3", "1", "33.33%", "1.00", "20.0", "38.0", "39.6", "40.0"]
    assert lines[4].split() == ["POST", "/b", "REQ-A-1", "1", "0", "0.00%", "0.33", "30.0", "30.0", "30.0", "30.0"]
    assert lines[6].split()[:4] == ["(requirement)", "REQ-A-1", "4", "1"]
    assert lines[7].split()[:3] == ["Aggregated", "4", "1"]
    assert len({len(line) for line in lines[1:3]}) == 1  # header and rule aligned

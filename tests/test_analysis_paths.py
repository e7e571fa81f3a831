"""analysis: every internal path of the fast selection stays bit-for-bit numpy, on random data.

The speed work (bench/analyze_speed.py) added paths that ordinary data may not reach: a batch's group
combinations counted densely or by np.unique, coarse first histograms, pair sums by runs or by cumulative sums, histogram budgets scaled with the sample count,
a radix pass before the final sort, and reading Arrow buffers directly (sliced arrays, nulls). Each is
forced here and checked against numpy on the same rows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgate.analysis import ranks, select, stream_rows
from loadgate.analysis import summary as summary_mod
from loadgate.analysis.summary import DEFAULT_PERCENTILES, summarize
from loadgate.analysis.window import Window
from loadgate.data.arrowbuf import numpy_of

sys.path.insert(0, str(Path(__file__).parent))
from test_analysis import (  # noqa: E402
    REQ_LABELS,
    T0,
    check_series,
    draw_values,
    make_table,
    reference,
    scopes_of,
    values_kind,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    kind=values_kind,
    seconds=st.sampled_from([1, 7, 90]),
    local_combos=st.sampled_from([0, 1 << 22]),
    max_runs=st.sampled_from([0, 1 << 12]),
    budget_bits=st.sampled_from([22, 3]),
    budget=st.sampled_from([1 << 20, 16]),
    chunk_rows=st.sampled_from([1 << 20, 97]),
    batches=st.integers(1, 3),
    users_kind=st.sampled_from(["random", "ramp"]),
    first_bits=st.sampled_from([16, 3]),
)
def test_every_selection_path_equals_numpy(
    n, seed, kind, seconds, local_combos, max_runs, budget_bits, budget, chunk_rows, batches, users_kind, first_bits
):
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.random(n)) * seconds
    rt = rng.choice(["GET", "POST", "PUT"], n).tolist()
    name = rng.choice([f"/p{i}" for i in range(9)], n).tolist()
    req = rng.choice(REQ_LABELS, n).tolist()
    value, ok = draw_values(kind, n, rng), rng.random(n) > 0.1
    # Random counts, or a ramp that changes seldom (long runs of one count, as in a real run)
    users = rng.integers(0, 50, n) if users_kind == "random" else np.cumsum(rng.random(n) < 0.01) + 1
    table = make_table(ts, rt, name, value, ok, req, users=users, batches=batches, dictionary=True)
    with (
        mock.patch.object(stream_rows, "_LOCAL_COMBOS", local_combos),
        mock.patch.object(ranks, "_FIRST_BITS", first_bits),
        mock.patch.multiple(select, _MAX_RUNS=max_runs, _ROWS_PER_BUDGET_BITS=budget_bits, _BIN_BUDGET=budget),
        mock.patch.object(summary_mod, "_CHUNK_ROWS", chunk_rows),
    ):
        summary = summarize(table, percentiles=DEFAULT_PERCENTILES)
    window = Window(float(ts.min()), float(ts.max()))
    expected = reference(ts, rt, name, value, ok, req, window, DEFAULT_PERCENTILES)
    got = scopes_of(summary)
    assert set(got) == set(expected)
    for key, want in expected.items():
        times = got[key]["response_time_ms"]
        assert (got[key]["requests"], got[key]["failures"]) == (want["requests"], want["failures"]), key
        for k, p in want["pct"].items():
            assert times[k] == p, (key, k, times[k], p)
        assert times["min"] == want["x"].min() and times["max"] == want["x"].max()
    check_series(summary, ts, value, ok, req, window, users)


def test_pair_sums_by_runs_and_by_cumulative_sums_agree_with_a_loop():
    rng = np.random.default_rng(7)
    for trial in range(300):
        rows = rng.integers(0, 9, (int(rng.integers(1, 40)), int(rng.integers(1, 6))))
        n = int(rng.integers(1, 30))
        k = int(rng.integers(0, 80))
        into, of = rng.integers(0, n, k), rng.integers(0, rows.shape[0], k)
        if trial % 3 == 0:  # runs, as the per-second series make them
            start = int(rng.integers(0, max(1, min(n, rows.shape[0]) - 1)))
            length = int(rng.integers(0, min(n, rows.shape[0]) - start + 1))
            into, of = np.arange(start, start + length), np.arange(start, start + length)
        want = np.zeros((n, rows.shape[1]), np.int64)
        for i, o in zip(into, of):
            want[i] += rows[o]
        for max_runs in (1 << 12, 0):
            with mock.patch.object(select, "_MAX_RUNS", max_runs):
                assert (select.sum_rows(rows, into, of, n) == want).all(), (trial, max_runs)


def test_sliced_bitmaps_read_from_their_own_bytes():
    """Booleans of a slice come from the slice's bits, at any offset into the parent's bitmap."""
    rng = np.random.default_rng(3)
    values = [None if v < 0.1 else bool(v > 0.5) for v in rng.random(75)]
    column = pa.array(values, pa.bool_())
    for offset in range(0, 75, 3):
        for length in (0, 1, 7, 8, 9, 30, 75 - offset):
            length = min(length, 75 - offset)
            got = numpy_of(column.slice(offset, length), False).tolist()
            assert got == [bool(v) for v in values[offset : offset + length]], (offset, length)


def test_sliced_arrays_with_nulls_read_like_arrow_reads_them():
    """Columns straight from Arrow buffers: offsets of sliced batches and nulls filled as documented."""
    ts = pa.array([T0 + i for i in range(10)], pa.float64())
    rt = pa.array([1.0, None, 3.0, 4.0, None, 6.0, 7.0, 8.0, 9.0, 10.0], pa.float64())
    ok = pa.array([True, None, False, True, True, True, None, True, True, False], pa.bool_())
    users = pa.array([1, 2, None, 4, 5, 6, 7, None, 9, 10], pa.int32())
    for offset, length in [(0, 10), (1, 9), (3, 7), (8, 2), (9, 1), (3, 5), (8, 1), (10, 0)]:
        sliced = [c.slice(offset, length) for c in (ts, rt, ok, users)]
        part = slice(offset, offset + length)
        assert np.array_equal(numpy_of(sliced[0], np.nan), np.array(ts.to_pylist()[part]))
        want_rt = np.array([np.nan if v is None else v for v in rt.to_pylist()[part]])
        assert np.array_equal(numpy_of(sliced[1], np.nan), want_rt, equal_nan=True)
        assert numpy_of(sliced[2], False).tolist() == [bool(v) for v in ok.to_pylist()[part]]
        assert numpy_of(sliced[3], -1).tolist() == [-1 if v is None else v for v in users.to_pylist()[part]]

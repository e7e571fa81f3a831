"""analysis: the bounded-memory path over a Parquet file is as exact as the in-memory one.

The same property as ``test_analysis``: every percentile and every per-second bucket equals
``numpy.percentile`` on the same rows, now through ``summarize`` of a Parquet file, with tiny row groups (many
chunks), row groups out of time order (the series computed by reading again), histogram and gather
budgets small enough to force many refinement passes, and adversarial values (all equal, two spikes,
one huge outlier). The in-memory summary is the second oracle: everything but the mean's last bits
(a sum in another order) is the same.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgate.analysis import ranks, stream
from loadgate.analysis.ranks import RankSearch, from_keys, to_keys
from loadgate.analysis.summary import DEFAULT_PERCENTILES, summarize
from loadgate.analysis.window import Window
from loadgate.data.open_samples import time_range
from loadgate.data.row_groups import RowGroups
from loadgate.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))
from test_analysis import REQ_LABELS, T0, check_series, draw_values, make_table, reference, scopes_of  # noqa: E402

stream_kind = st.sampled_from(
    ["lognormal", "ties", "rounded", "constant", "signed", "tiny", "huge", "two_spikes", "outlier"]
)


def draw(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "two_spikes":
        return np.where(rng.random(n) < 0.5, 3.0, 1e300)
    if kind == "outlier":
        v = rng.lognormal(3, 0.3, n)
        if n:  # an empty run (compare's baseline may be one) has no row to make the outlier
            v[rng.integers(0, n)] = 1e308
        return v
    return draw_values(kind, n, rng)


def write(path: Path, table: pa.Table, rows_per_group: int, order: str) -> None:
    """The table as Parquet, in row groups of ``rows_per_group`` rows: in time order, shuffled, or with
    empty row groups in between."""
    n = table.num_rows
    cuts = list(range(0, n, max(1, rows_per_group))) + [n]
    parts = [table.slice(a, b - a) for a, b in zip(cuts[:-1], cuts[1:])]
    if order == "shuffled":
        parts = [parts[i] for i in np.random.default_rng(n).permutation(len(parts))]
    with pq.ParquetWriter(path, table.schema) as writer:
        for part in parts:
            writer.write_table(part, row_group_size=max(1, part.num_rows))
            if order == "empty_groups":
                writer.write_table(table.slice(0, 0))


def assert_same_as_numpy(summary, ts, rt, name, value, ok, req, window, qs, users=None):
    expected = reference(ts, rt, name, value, ok, req, window, qs)
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
    check_series(summary, ts, value, ok, req, window, users)


def without_means(summary: dict) -> dict:
    """The summary with every mean left out (the one value whose float sum order may differ)."""
    out = dict(summary)
    for key in ("overall",):
        out[key] = _no_mean(summary[key])
    out["requirements"] = {k: _no_mean(v) for k, v in summary["requirements"].items()}
    out["requests"] = [_no_mean(v) for v in summary["requests"]]
    return out


def _no_mean(stats: dict) -> dict:
    return {**stats, "response_time_ms": {k: v for k, v in stats["response_time_ms"].items() if k != "mean"}}


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 1500),
    seed=st.integers(0, 2**32 - 1),
    kind=stream_kind,
    groups=st.integers(1, 4),
    cut=st.sampled_from(["none", "inside", "edges", "empty"]),
    rows_per_group=st.sampled_from([1, 13, 400, 1 << 20]),
    order=st.sampled_from(["time", "shuffled", "empty_groups"]),
    cells=st.sampled_from([1 << 23, 64, 4]),
    gather=st.sampled_from([1 << 24, 50, 0]),
    first_bits=st.sampled_from([20, 3]),
    series_rows=st.sampled_from([1 << 23, 30]),
    extra=st.lists(st.sampled_from([0.0, 100.0, 12.5, 75.0, 99.99, 33.3]), max_size=3, unique=True),
)
def test_streamed_percentiles_equal_numpy_bit_for_bit(
    tmp_path, n, seed, kind, groups, cut, rows_per_group, order, cells, gather, first_bits, series_rows, extra
):
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(np.round(rng.random(n) * 60, 3))
    rt = rng.choice(["GET", "POST"][: max(1, groups // 2)], n).tolist()
    name = rng.choice(["/a", "/b", "/c", "/d"][:groups], n).tolist()
    req = rng.choice(REQ_LABELS, n).tolist()
    value, ok = draw(kind, n, rng), rng.random(n) > 0.2
    users = rng.integers(0, 50, n)
    lo, hi = float(ts.min()), float(ts.max())
    window = {
        "none": None,
        "inside": Window(lo + (hi - lo) / 4, hi - (hi - lo) / 3),
        "edges": Window(float(ts[n // 3]), float(ts[(2 * n) // 3])),
        "empty": Window(hi + 1, hi + 2),
    }[cut]
    qs = tuple(DEFAULT_PERCENTILES) + tuple(extra)
    table = make_table(ts, rt, name, value, ok, req, users=users)
    path = tmp_path / f"s{seed}.parquet"
    write(path, table, rows_per_group, order)
    with (
        mock.patch.multiple(ranks, _CELLS=cells, _GATHER=gather, _FIRST_BITS=first_bits),
        mock.patch.object(stream, "_SERIES_ROWS", series_rows),
    ):
        got = summarize(path, window, percentiles=qs)
    assert_same_as_numpy(got, ts, rt, name, value, ok, req, window or Window(lo, hi), qs, users)
    assert without_means(got) == without_means(summarize(table, window, percentiles=qs))


@pytest.mark.parametrize(
    "values",
    [[7.5] * 300, [1.0, 1e300] * 150, [-0.0, 0.0] * 150, [*range(299), 1e308], [np.nan] * 10 + [2.0], [np.nan] * 3],
)
def test_adversarial_values_through_many_passes(tmp_path, values):
    n = len(values)
    ts = T0 + np.arange(n) / 100
    table = make_table(ts, ["GET"] * n, ["/x"] * n, values, [True] * n, ["REQ-A-1"] * n)
    path = tmp_path / "s.parquet"
    write(path, table, 7, "time")
    with mock.patch.multiple(ranks, _CELLS=8, _GATHER=3, _FIRST_BITS=2):
        got = summarize(path, percentiles=(0, 50, 99.9, 100))
    assert without_means(got) == without_means(summarize(table, percentiles=(0, 50, 99.9, 100)))
    x = np.array([v for v in values if not np.isnan(v)])
    times = got["overall"]["response_time_ms"]
    for q in (0, 50, 99.9, 100):
        assert times[f"p{q:g}"] == (np.percentile(x, q) if x.size else None)


def test_rank_search_finds_every_rank_of_every_group():
    """The selection alone, against a sort: overlapping output groups, any budget, any chunking."""
    rng = np.random.default_rng(5)
    for trial in range(200):
        n = int(rng.integers(1, 2000))
        v = [
            rng.lognormal(3, 1.5, n),
            np.full(n, 7.0),
            rng.normal(0, 100, n) * rng.choice([1.0, 0.0, -0.0], n),
            np.where(rng.random(n) < 0.5, 1.0, 1e300),
        ][trial % 4]
        nb = int(rng.integers(1, 5))
        base = rng.integers(0, nb, n).astype(np.int32)
        keys = to_keys(v)
        assert np.array_equal(from_keys(keys), v)
        search = RankSearch(
            int(keys.min()),
            int(keys.max()),
            cells=int(rng.choice([1 << 23, 64, 4])),
            gather=int(rng.choice([1 << 24, 10, 0])),
        )
        chunks = np.array_split(np.arange(n), int(rng.integers(1, 6)))
        for c in chunks:
            search.add(base[c], keys[c], nb)
        po = np.concatenate([np.arange(nb), np.full(nb, nb)])  # each base alone, and all of them
        pb = np.concatenate([np.arange(nb), np.arange(nb)])
        wanted = [
            (o, r)
            for o in range(nb + 1)
            for m in [int((base == o).sum()) if o < nb else n]
            for r in sorted({0, m - 1, m // 2, int(m * 0.99)})
            if m
        ]
        search.ask(po, pb, np.array([w[0] for w in wanted]), np.array([w[1] for w in wanted]))
        while search.passes_left:
            for c in chunks:
                search.add(base[c], keys[c], nb)
            search.advance()
        for (o, r), key in zip(wanted, search.keys):
            x = np.sort(v[base == o] if o < nb else v)
            assert from_keys(np.array([key]))[0] == x[r], (trial, o, r)


def test_statistics_that_do_not_hold_are_replaced_by_the_data(tmp_path):
    """A writer whose min/max statistics are too narrow (none we know; a mock stands in) costs a pass,
    not a wrong answer."""
    n = 500
    ts = T0 + np.arange(n) / 10
    values = np.random.default_rng(2).lognormal(3, 1, n)
    table = make_table(ts, ["GET"] * n, ["/x"] * n, values, [True] * n)
    path = tmp_path / "s.parquet"
    write(path, table, 100, "time")
    real = RowGroups.ranges

    def narrow(self, column, *, read=False):
        got = real(self, column, read=read)
        return got if read or column != "response_time_ms" else [(r[0] + 1, r[1] - 1) for r in got]

    with mock.patch.object(RowGroups, "ranges", narrow):
        got = summarize(path, series=False)
    assert got["overall"]["response_time_ms"]["p50"] == np.percentile(values, 50)
    assert got["overall"]["response_time_ms"]["max"] == values.max()


def test_empty_file_and_time_range(tmp_path):
    table = make_table([], [], [], [], [])
    path = tmp_path / "empty.parquet"
    pq.write_table(table, path)
    assert time_range(path) is None
    got = summarize(path)
    assert got["window"] == {"start": 0.0, "end": 0.0, "seconds": 0.0} and got["overall"]["requests"] == 0
    assert without_means(got) == without_means(summarize(table))
    full = make_table([T0 + 3, np.nan, T0 + 1], ["GET"] * 3, ["/"] * 3, [1.0, 2.0, 3.0], [True] * 3)
    pq.write_table(full, path)
    assert time_range(path) == (T0 + 1, T0 + 3)


def test_a_damaged_file_is_one_clear_error(tmp_path):
    table = make_table(T0 + np.arange(1000) / 10, ["GET"] * 1000, ["/"] * 1000, np.arange(1000.0), [True] * 1000)
    path = tmp_path / "s.parquet"
    pq.write_table(table, path, row_group_size=100)
    data = path.read_bytes()
    path.write_bytes(data[:200] + b"\0" * 2000 + data[2200:])
    with pytest.raises(ConfigError, match="truncated or corrupt Parquet file"):
        summarize(path)


def test_the_last_second_takes_the_rows_at_the_window_end(tmp_path):
    """Whole-second timestamps, one row group each: the row at the window's end belongs to the last
    second, which is complete only once every row group is read."""
    ts = T0 + np.array([0.0, 1.0, 2.0, 2.0])
    table = make_table(
        ts, ["GET"] * 4, ["/"] * 4, [1.0, 2.0, 3.0, 4.0], [True] * 4, ["REQ-A-1"] * 4, users=[1, 2, 3, 4]
    )
    path = tmp_path / "s.parquet"
    write(path, table, 1, "time")
    got = summarize(path)
    assert got["series"]["requests"] == [1, 3] and got["series"]["p50"] == [1.0, 3.0]
    assert got["series_by_requirement"]["REQ-A-1"]["users"] == [1, 4]
    assert without_means(got) == without_means(summarize(table))

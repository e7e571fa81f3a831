"""The comparison read from the samples files in bounded memory (``compare_rows.load_pair``: counts, then only
the planned order statistics) equals the whole-table one (``oracles.load_run``), row for row and bit for bit:
adversarial distributions, requests without a response time, several requirement labels, row groups of a
few rows, and the rank search's budgets shrunk so that it needs many passes."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loadgate.analysis import ranks
from loadgate.data.row_groups import RowGroups
from loadgate.errors import ConfigError
from loadgate.history import compare
from loadgate.history.compare_rows import compare_runs, load_pair

sys.path.insert(0, str(Path(__file__).parent))
from test_analysis import REQ_LABELS, T0, make_table  # noqa: E402
from test_analysis_stream import draw, stream_kind, write  # noqa: E402
from oracles import load_run  # noqa: E402

EXTRA = ["p90", "p99.9", "p0", "p100", "mean"]  # what thresholds may name beside compare's own p50/p95/p99


def run_dir(root: Path, name: str, n: int, kind: str, seed: int, rows_per_group: int, window: bool) -> str:
    rng = np.random.default_rng(seed)
    d = root / name
    d.mkdir()
    ts = np.sort(T0 + np.round(rng.random(n) * 60, 3))
    value = draw(kind, n, rng)
    value[rng.random(n) < 0.03] = np.nan  # requests that got no response time: counted, not in latencies
    table = make_table(
        ts,
        rng.choice(["GET", "POST"], n),
        rng.choice(["/a", "/b", "/c"], n),
        value,
        rng.random(n) > 0.05,
        rng.choice(REQ_LABELS, n),
    )
    write(d / "samples.parquet", table, rows_per_group, "time")
    if window:
        (d / "run.json").write_text(json.dumps({"start": T0, "ramp_up_done": T0 + 4, "warmup": 2, "end": T0 + 51}))
    return str(d)


def same(a, b) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    n_base=st.integers(0, 3000),
    n_cand=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
    kinds=st.tuples(stream_kind, stream_kind),
    rows_per_group=st.sampled_from([7, 97, 1 << 20]),
    window=st.booleans(),
    cells=st.sampled_from([1 << 23, 256]),
    gather=st.sampled_from([1 << 24, 40]),
    first_bits=st.sampled_from([16, 3]),
)
@example(
    n_base=0,
    n_cand=1,
    seed=0,
    kinds=("outlier", "lognormal"),
    rows_per_group=7,
    window=False,
    cells=1 << 23,
    gather=1 << 24,
    first_bits=16,
)  # an empty baseline whose kind places an outlier (a fresh clone's CI found it)
def test_bounded_comparison_equals_the_whole_table_one(
    tmp_path_factory, n_base, n_cand, seed, kinds, rows_per_group, window, cells, gather, first_bits
):
    root = tmp_path_factory.mktemp("runs")
    a = run_dir(root, "a", n_base, kinds[0], seed, rows_per_group, window)
    b = run_dir(root, "b", n_cand, kinds[1], seed + 1, rows_per_group, window)
    # 300 bootstrap replicates, not 10,000: the same code, ranks planned and read alike, in a fraction of the time
    with (
        mock.patch.multiple(ranks, _CELLS=cells, _GATHER=gather, _FIRST_BITS=first_bits),
        mock.patch.object(compare, "RESAMPLES", 300),
    ):
        streamed = load_pair(a, b, EXTRA)
        whole = load_run(a), load_run(b)
        assert {k: (g.requests, g.failures, g.n) for k, g in streamed[0].groups.items()} == {
            k: (g.requests, g.failures, g.n) for k, g in whole[0].groups.items()
        }
        assert same(compare.compare_loaded(*streamed), compare.compare_loaded(*whole))
        ci_streamed, ci_whole = compare.regression_ci(*streamed), compare.regression_ci(*whole)
        for key in whole[0].groups.keys() & whole[1].groups.keys():
            for metric in [*EXTRA, "p95", "error_rate"]:
                assert same(ci_streamed(*key, metric), ci_whole(*key, metric)), (key, metric)


def test_a_large_pair_needs_only_its_ranks(tmp_path):
    """100k samples a run: every scope's percentiles have intervals, and a scope holds only the planned
    order statistics (~20,000 a percentile), not its samples."""
    a = run_dir(tmp_path, "a", 100_000, "lognormal", 1, 1 << 15, True)
    b = run_dir(tmp_path, "b", 100_000, "lognormal", 2, 1 << 15, True)
    streamed = load_pair(a, b)
    whole = load_run(a), load_run(b)
    doc = compare.compare_loaded(*streamed)
    assert same(doc, compare.compare_loaded(*whole))
    assert all(r["ci"] is not None for r in doc["requests"])
    biggest = max(streamed[0].groups.values(), key=lambda g: g.n)
    assert biggest.n > 25_000 and 0 < len(biggest.times) < biggest.n / 20


def test_an_order_statistic_not_planned_is_an_error_not_a_wrong_value(tmp_path):
    a = run_dir(tmp_path, "a", 3000, "lognormal", 1, 500, True)
    b = run_dir(tmp_path, "b", 3000, "lognormal", 2, 500, True)
    base, cand = load_pair(a, b)  # p50, p95, p99 only
    key = next(iter(base.groups.keys() & cand.groups.keys()))
    with pytest.raises(LookupError):
        compare.percentile_change(base.groups[key], cand.groups[key], 75.0)


def test_runs_with_nothing_in_common_and_missing_samples(tmp_path):
    a = run_dir(tmp_path, "a", 100, "lognormal", 1, 50, True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="missing; compare needs the raw samples"):
        compare_runs(a, str(tmp_path / "empty"))
    c = run_dir(tmp_path, "c", 100, "lognormal", 3, 50, False)
    (Path(c) / "run.json").write_text(json.dumps({"start": T0 + 1000, "end": T0 + 1100}))  # a window after every sample
    with pytest.raises(ConfigError, match="nothing to compare"):
        compare_runs(a, c)


def test_statistics_that_do_not_hold_cost_a_pass_not_a_wrong_value(tmp_path):
    """The histogram's range comes from the row groups' min/max statistics; a writer whose statistics are
    too narrow (none we know; a mock stands in) makes the count pass start again from the data."""
    a = run_dir(tmp_path, "a", 3000, "lognormal", 1, 400, True)
    b = run_dir(tmp_path, "b", 3000, "outlier", 2, 400, True)
    real = RowGroups.ranges

    def narrow(self, column, *, read=False):
        got = real(self, column, read=read)
        return got if read or column != "response_time_ms" else [r and (r[0] + 1, r[1] - 1) for r in got]

    with mock.patch.object(RowGroups, "ranges", narrow):
        streamed = load_pair(a, b)
    assert same(compare.compare_loaded(*streamed), compare.compare_loaded(load_run(a), load_run(b)))

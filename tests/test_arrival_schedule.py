"""The open model's start times (plugin/arrival_schedule.py) and its run-side options (run/arrival.py)."""

from __future__ import annotations

import itertools
import statistics

import pytest

from loadgate.errors import ConfigError
from loadgate.gate.arrival import ArrivalShape, Stage
from loadgate.gate.thresholds import load_threshold_file
from loadgate.plugin.arrival_schedule import inverse, start_times
from loadgate.run.options import resolve_options


def _take(shape: ArrivalShape, n: int, index: int = 0, count: int = 1, seed: str = "") -> list[float]:
    return list(itertools.islice(start_times(shape, index, count, seed), n))


def test_a_constant_rate_is_evenly_spaced():
    assert _take(ArrivalShape(rate=200.0), 5) == pytest.approx([0, 0.005, 0.010, 0.015, 0.020])


def test_a_ramp_starts_as_many_as_its_integral_says():
    shape = ArrivalShape(stages=(Stage(10.0, 100.0), Stage(20.0, 100.0)))
    for n in (1, 10, 499, 500, 501, 2400):
        assert shape.expected(0, inverse(shape, n)) == pytest.approx(n)
    starts = _take(shape, 2500)
    assert sum(1 for t in starts if t < 10) == 500 and sum(1 for t in starts if 10 <= t < 11) == 100


def test_a_ramp_down_to_zero_ends_the_schedule():
    shape = ArrivalShape(rate=10.0, stages=(Stage(2.0, 0.0),))
    assert len(list(start_times(shape))) == 10  # the area of the triangle: 10 starts, then none


@pytest.mark.parametrize("count", [2, 3])
def test_processes_share_a_constant_schedule_exactly_interleaved(count):
    shape = ArrivalShape(rate=90.0)
    alone = _take(shape, 900)
    shared = sorted(t for i in range(count) for t in _take(shape, 900 // count, i, count))
    assert shared == pytest.approx(alone)


def test_poisson_gaps_have_the_rates_mean_and_the_seed_repeats_them():
    shape = ArrivalShape(rate=100.0, distribution="poisson")
    starts = _take(shape, 20000, seed="REQ-A")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert statistics.fmean(gaps) == pytest.approx(0.01, rel=0.03)
    assert statistics.pstdev(gaps) == pytest.approx(0.01, rel=0.05)  # exponential: sd = mean
    assert _take(shape, 50, seed="REQ-A") == starts[:50] and _take(shape, 50, seed="REQ-B") != starts[:50]
    two = sorted(t for i in range(2) for t in _take(shape, 10000, i, 2, "REQ-A"))
    assert len([t for t in two if t < 50]) == pytest.approx(5000, rel=0.04)  # half the rate each: the total


def _files(tmp_path, load: str) -> dict:
    p = tmp_path / "REQ-A.yaml"
    p.write_text("requirement: REQ-A\nload:\n" + load + "thresholds:\n  - metric: p95\n    alert: '>1s'\n")
    return {"REQ-A": load_threshold_file(str(p))}


def _opts(files, **flags):
    base = {"requirements": ["REQ-A"], "scenarios": "s", "thresholds": "t", "out": "o"}
    return resolve_options({**base, **flags}, files, [])


def test_the_flags_override_the_files_shape_and_the_pool_is_spawned_at_once(tmp_path):
    files = _files(tmp_path, "  arrival: {rate: 50/s, max_users: 30, distribution: poisson}\n")
    opts = _opts(files)
    assert (opts.arrival_rate, opts.max_users, opts.users, opts.spawn_rate) == (50.0, 30, 30, 30.0)
    opts = _opts(files, arrival_rate=200.0, max_users=400)
    shape = dict(opts.arrival_shapes)["REQ-A"]
    assert (shape.rate, shape.max_users, shape.distribution, opts.users) == (200.0, 400, "poisson", 400)
    assert _opts(files, users=7).arrival_shapes == ()  # --users alone: the closed model, as asked


def test_without_a_pool_it_is_a_seconds_worth_of_starts(tmp_path):
    opts = _opts(_files(tmp_path, "  users: 3\n"), arrival_rate=12.5)
    assert (opts.max_users, opts.users, opts.arrival_rate) == (13, 13, 12.5)


@pytest.mark.parametrize(
    "load, flags, words",
    [
        ("  users: 3\n", {"arrival_rate": 10.0, "users": 5}, ["--users 5 with --arrival-rate 10/s", "drop --users"]),
        ("  users: 3\n", {"max_users": 5}, ["--max-users 5", "give --arrival-rate 200/s too"]),
        ("  arrival: {rate: 5/s}\n", {"max_users": 0}, ["--max-users 0", "whole number of users > 0"]),
        ("  arrival: {rate: 5/s}\n  select: journeys\n", {}, ["load.select: journeys", "use select: tasks"]),
        ("  arrival: {rate: 5/s}\n", {"ui": True}, ["--ui with an open-model load", "run headless"]),
    ],
)
def test_contradictions_are_refused_with_the_fix(tmp_path, load, flags, words):
    with pytest.raises(ConfigError) as e:
        _opts(_files(tmp_path, load), **flags)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_the_progress_line_shows_the_dropped_iterations_only_when_there_are(tmp_path):
    import io

    from loadgate.run.progress import Progress

    opts = _opts(_files(tmp_path, "  arrival: {rate: 50/s, max_users: 4}\n  duration: 10s\n"))
    progress = Progress(str(tmp_path), opts, print, io.StringIO())
    snap = {"t": 5.0, "elapsed": 5.0, "ramp_up_done": 1.0, "users": 4, "rps": 20, "cpu": 10}
    assert "dropped" not in progress.line({**snap, "dropped": 0})
    assert progress.line({**snap, "dropped": 123}).endswith("| cpu 10% | dropped 123")

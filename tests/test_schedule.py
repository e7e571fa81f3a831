"""Latency from the schedule, piece by piece with hand-computed answers: the pacing bookkeeping, the
intended percentiles with omitted slots, stalls of unpaced users, and which latency the gate takes."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from loadgate.analysis.schedule import bunched_above, with_schedule
from loadgate.analysis.summary import summarize
from loadgate.analysis.window import Window
from loadgate.data.samples import SCHEMA
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import load_threshold_file
from loadgate.gate.verdict import evaluate

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # as in test_recorder: no gevent patching of pytest
try:
    from locust import between, constant
    from locust import constant_pacing as locust_pacing
    from locust import constant_throughput as locust_throughput

    from loadgate import pacing
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]

T0 = 1_800_000_000.0


# --- the pacing bookkeeping ------------------------------------------------------------------


def test_on_time_iterations_wait_for_their_slot_and_late_ones_count_the_slots_they_skipped():
    s = pacing.UserState(0, 0.1)
    s.begin(T0)
    assert s.next_wait(T0 + 0.02) == pytest.approx(0.08)  # iteration took 20 ms: sleep to the next slot
    assert (s.late_ms, s.omitted, s.first) == (0.0, 0, True)
    s.first = False  # its first request was recorded
    # the iteration at T0+0.1 took 350 ms: due at T0+0.2, it starts 250 ms late; T0+0.3, +0.4 are lost
    assert s.next_wait(T0 + 0.45) == 0.0
    assert s.late_ms == pytest.approx(250.0) and s.omitted == 2 and s.wake == T0 + 0.45
    s.first = False
    # re-based, as Locust's constant_pacing: the next slot is 100 ms after the late start, not a catch-up
    assert s.next_wait(T0 + 0.47) == pytest.approx(0.08) and s.late_ms == 0.0 and s.omitted == 0


def test_an_iteration_without_requests_keeps_its_omitted_slots_for_the_next_one():
    s = pacing.UserState(0, 0.1)
    s.begin(T0)
    s.first = False
    s.next_wait(T0 + 0.35)  # late by 250 ms: 2 omitted; this iteration then sends no request
    assert s.omitted == 2 and s.first
    s.next_wait(T0 + 0.62)  # late again, by 170 ms: 1 more omitted
    assert s.omitted == 3


@pytest.mark.parametrize(
    "wait_time, period",
    [
        (locust_pacing(2), 2.0),
        (locust_throughput(4), 0.25),
        (pacing.constant_pacing(0.5), 0.5),
        (pacing.constant_throughput(10), 0.1),
        (between(1, 2), None),
        (constant(1), None),
        (lambda self: 1.0, None),
        (None, None),
    ],
)
def test_paced_wait_times_are_recognised_and_others_are_not(wait_time, period):
    assert pacing.period_of(wait_time) == period


def test_bad_pacing_is_refused_with_what_was_given():
    with pytest.raises(ValueError, match=r"constant_pacing\(\) needs a period in seconds > 0, got 0"):
        pacing.constant_pacing(0)
    with pytest.raises(ValueError, match=r"constant_throughput\(\) needs a rate > 0, got -1"):
        pacing.constant_throughput(-1)


# --- intended percentiles --------------------------------------------------------------------


def _table(rows: list[dict]) -> pa.Table:
    base = {
        "request_type": "GET",
        "name": "/x",
        "response_length": 0,
        "status_code": 200,
        "success": True,
        "exception": None,
        "requirement": "REQ-A-1",
        "worker": "local",
        "users": 1,
        "user": 0,
        "intended_ms": None,
        "omitted": None,
        "period_ms": None,
    }
    full = [{**base, **r} for r in rows]
    return pa.Table.from_pylist(full, schema=SCHEMA)


def _summary(table: pa.Table, window: Window | None = None) -> dict:
    return with_schedule(summarize(table, window, requirements=["REQ-A-1"]), table, window, requirements=["REQ-A-1"])


def test_intended_percentiles_count_omitted_slots_as_the_period_says():
    # One user paced at 100 ms. Iteration 2 hangs 400 ms; iteration 3 starts 300 ms after its slot
    # (intended 2 + 300 = 302 ms) having skipped 2 slots, which waited 302 - 100 and 302 - 200 ms.
    rows = [
        dict(timestamp=T0, response_time_ms=2.0, intended_ms=2.0, omitted=0, period_ms=100.0),
        dict(timestamp=T0 + 0.1, response_time_ms=400.0, intended_ms=400.0, omitted=0, period_ms=100.0),
        dict(timestamp=T0 + 0.5, response_time_ms=2.0, intended_ms=302.0, omitted=2, period_ms=100.0),
        dict(timestamp=T0 + 0.6, response_time_ms=2.0, intended_ms=2.0, omitted=0, period_ms=100.0),
    ]
    s = _summary(_table(rows), Window(T0, T0 + 1))
    o = s["overall"]
    want = np.array([2.0, 400.0, 302.0, 2.0, 202.0, 102.0])
    for q in (50, 90, 95, 99, 99.9):
        assert o["intended_response_time_ms"][f"p{q:g}"] == np.percentile(want, q)
    assert o["intended_response_time_ms"]["p50"] == 152.0  # (102 + 202) / 2
    assert o["response_time_ms"]["p50"] == 2.0  # the raw rows are what they were
    assert (o["requests"], o["paced_requests"], o["omitted"]) == (4, 4, 2)
    assert o["schedule_attainment"] == 4 / 6 and o["on_time"] == 3 / 4
    assert s["requirements"]["REQ-A-1"]["omitted"] == 2 and s["requests"][0]["omitted"] == 2
    assert sum(s["series"]["omitted"]) == 2 and s["series"]["intended_p95"][0] is not None


def test_omitted_slots_outside_the_window_do_not_count():
    rows = [dict(timestamp=T0 + 0.5, response_time_ms=2.0, intended_ms=302.0, omitted=2, period_ms=100.0)]
    s = _summary(_table(rows), Window(T0 + 0.35, T0 + 1))  # the slots were at T0+0.3 and T0+0.4
    assert s["overall"]["omitted"] == 1 and s["overall"]["intended_response_time_ms"]["max"] == 302.0


def test_unpaced_scopes_have_no_intended_latency_and_a_schedule_1_file_reads_as_unpaced():
    rows = [dict(timestamp=T0 + i, response_time_ms=5.0) for i in range(5)]
    o = _summary(_table(rows))["overall"]
    assert o["intended_response_time_ms"] is None and o["paced_requests"] == 0 and o["omitted"] == 0
    assert o["schedule_attainment"] is None
    old = _table(rows).select(SCHEMA.names[:11])  # loadgate.samples/1 columns only
    assert _summary(old)["overall"]["intended_response_time_ms"] is None


def _paced_run(seed: int, users: int, iterations: int, unpaced: int) -> pa.Table:
    """Paced users (periods 100 or 250 ms, two requests an iteration) whose target stalls now and
    then: late iterations with omitted slots, as pacing records them; plus unpaced rows; in time order."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        period = float(rng.choice([100.0, 250.0]))
        label = str(rng.choice(["REQ-A-1", "REQ-B-2", "REQ-A-1,REQ-B-2", ""]))
        start = T0 + rng.random() * period / 1000
        for k in range(iterations):
            late = float(rng.choice([0.0, 0.0, 0.0, rng.random() * 5 * period]))
            skipped = int(late // period)
            t = start + (k * period + late) / 1000
            for j, name in enumerate(("/a", "/b")):
                rt = float(rng.lognormal(1, 1))
                rows.append(
                    dict(
                        timestamp=t,
                        name=name,
                        response_time_ms=rt,
                        intended_ms=rt + late,
                        omitted=skipped if j == 0 else None,
                        period_ms=period,
                        user=u,
                        requirement=label,
                        success=bool(rng.random() > 0.1),
                    )
                )
                t += rt / 1000
    for i in range(unpaced):
        rows.append(
            dict(
                timestamp=T0 + rng.random() * iterations * 0.25,
                name="/c",
                user=users + i % 3,
                response_time_ms=float(rng.lognormal(2, 1)),
                requirement="REQ-B-2",
            )
        )
    rows.sort(key=lambda r: r["timestamp"])
    return _table(rows)


@pytest.mark.parametrize(
    "seed, rows_per_group, cut", [(1, 7, "none"), (2, 64, "inside"), (3, 1 << 20, "inside"), (4, 3, "none")]
)
def test_a_paced_file_gives_the_in_memory_answer_one_row_group_at_a_time(tmp_path, seed, rows_per_group, cut):
    # a paced soak run is analysed in bounded memory; the answer is the in-memory one
    from test_analysis_stream import without_means, write

    table = _paced_run(seed, users=6, iterations=40, unpaced=50)
    path = tmp_path / "samples.parquet"
    write(path, table, rows_per_group, "time")
    window = None if cut == "none" else Window(T0 + 1.2, T0 + 6.5)
    qs = (50.0, 95.0, 99.0, 99.9)
    want = with_schedule(summarize(table, window, percentiles=qs), table, window, percentiles=qs)
    got = with_schedule(summarize(path, window, percentiles=qs), str(path), window, percentiles=qs)
    assert want["overall"]["omitted"] > 0 and want["overall"]["paced_requests"] > 0  # the case is exercised

    def intended_only(s):  # the intended stats (their means aside) and every schedule key
        out = without_means(s)
        for stats in (out["overall"], *out["requirements"].values(), *out["requests"]):
            if stats.get("intended_response_time_ms"):
                stats["intended_response_time_ms"] = {
                    k: v for k, v in stats["intended_response_time_ms"].items() if k != "mean"
                }
        return out

    assert intended_only(got) == intended_only(want)
    assert os.listdir(tmp_path) == ["samples.parquet"]  # the scratch file is gone


def test_no_room_for_the_scratch_file_computes_the_paced_latency_in_memory(tmp_path, capfd):
    import shutil
    import subprocess

    from test_analysis_stream import write

    table = _paced_run(5, users=6, iterations=40, unpaced=50)
    write(tmp_path / "samples.parquet", table, 64, "time")
    size = (tmp_path / "samples.parquet").stat().st_size
    small = tmp_path / "small"
    small.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size // 1024 + 8}k", "tmpfs", str(small)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        path = small / "samples.parquet"
        shutil.copy(tmp_path / "samples.parquet", path)  # a disk with less room left than the file takes
        got = with_schedule(summarize(path, None), str(path), None)
        assert "No space left on device" in capfd.readouterr().err
        want = with_schedule(summarize(table, None), table, None)
        no_mean = lambda stats: {k: v for k, v in stats.items() if k != "mean"}  # noqa: E731 (sum order)
        intended = [no_mean(s["overall"]["intended_response_time_ms"]) for s in (got, want)]
        assert intended[0] == intended[1]
        assert got["overall"]["omitted"] == want["overall"]["omitted"] > 0
        assert os.listdir(small) == ["samples.parquet"]  # the partial scratch file is gone
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def _paced_users(users: int, seconds: int, phase) -> pa.Table:
    """``users`` paced at 1 s, each iteration one 2 ms request on its slot; user u's slot at ``phase(u)``."""
    return _table(
        [
            dict(
                timestamp=T0 + k + phase(u), response_time_ms=2.0, intended_ms=2.0, omitted=0, period_ms=1000.0, user=u
            )
            for u in range(users)
            for k in range(seconds)
        ]
    )


def test_arrivals_say_how_bunched_the_iteration_starts_were():
    rng = np.random.default_rng(7)
    spread = rng.random(40)
    even = _summary(_paced_users(40, 10, lambda u: spread[u]), Window(T0, T0 + 11))["overall"]
    lockstep = _summary(_paced_users(40, 10, lambda u: 0.3 + 0.001 * u), Window(T0, T0 + 11))["overall"]
    # Half the users fire together at the end of the period, half at its start: the busiest tenth wraps.
    halves = _summary(_paced_users(40, 10, lambda u: 0.97 if u % 2 else 0.01), Window(T0, T0 + 11))["overall"]
    counts = np.histogram(spread, bins=20, range=(0, 1))[0]
    assert even["arrivals_busiest_tenth"] == (counts + np.roll(counts, -1)).max() / 40
    assert even["arrivals_bunched"] is False
    for bunched in (lockstep, halves):
        assert bunched["arrivals_busiest_tenth"] == 1.0 and bunched["arrivals_bunched"] is True
    few = _summary(_paced_users(3, 10, lambda u: 0.0), Window(T0, T0 + 11))["overall"]
    assert few["arrivals_busiest_tenth"] is None and few["arrivals_bunched"] is None  # 30 starts: too few
    unpaced = _summary(_table([dict(timestamp=T0 + i, response_time_ms=5.0) for i in range(50)]))["overall"]
    assert unpaced["arrivals_busiest_tenth"] is None and unpaced["arrivals_bunched"] is None


def test_what_counts_as_bunched_depends_on_how_many_users_share_the_period():
    """A random spread of few users piles up somewhere by chance; of many, it cannot."""
    rng = np.random.default_rng(1)
    for users in (5, 10, 40, 150):
        limit = bunched_above(users)
        false_alarms = 0
        for _ in range(200):
            counts = np.bincount(rng.integers(0, 20, users), minlength=20)
            false_alarms += (counts + np.roll(counts, -1)).max() / users > limit
        assert false_alarms <= 2, (users, limit, false_alarms)  # 0.1% odds each: 0.2 expected in 200
    assert bunched_above(10) > bunched_above(40) > bunched_above(150) >= 0.2
    assert bunched_above(2) == 1.0  # two users: never called bunched


# --- stalls of unpaced users -----------------------------------------------------------------


def _cadence(users: int, seconds: float, stall: tuple[float, float] | None, blocked: int) -> pa.Table:
    """Users sending a 2 ms request every 100 ms; during ``stall`` the first ``blocked`` users hang."""
    rows = []
    for u in range(users):
        t = T0 + u * 0.01
        while t < T0 + seconds:
            if stall and u < blocked and stall[0] <= t < stall[1]:
                rows.append(dict(timestamp=t, response_time_ms=(stall[1] - t) * 1000 + 2, user=u))
                t = stall[1] + 0.002 + 0.1
                continue
            rows.append(dict(timestamp=t, response_time_ms=2.0, user=u))
            t += 0.102
    return _table(rows)


def test_a_stall_of_every_user_is_found_with_the_requests_it_hid():
    s = _summary(_cadence(4, 10, (T0 + 4, T0 + 6), blocked=4))
    [stall] = s["stalls"]
    assert stall["users"] == 4 and stall["active_users"] == 4
    assert 1.8 <= stall["seconds"] <= 2.0 and stall["start"] >= T0 + 4
    # each user would have sent about 2 s / 102 ms - 1 = 18.6 requests more
    assert 65 <= stall["hidden_requests"] <= 80
    assert s["overall"]["stall_hidden"] == stall["hidden_requests"]


def test_a_stall_counts_what_it_hid_at_the_cadence_of_the_minutes_around_it():
    # the same 4 users sent one request a second for 10 minutes, long before: the whole run's median
    # gap would be 1 s (about 1 hidden request each); the 5 minutes around the stall say 102 ms
    early = _table([dict(timestamp=T0 - 1000 + k, response_time_ms=2.0, user=u) for u in range(4) for k in range(600)])
    table = pa.concat_tables([early, _cadence(4, 10, (T0 + 4, T0 + 6), blocked=4)])
    [stall] = _summary(table, Window(T0 - 1000, T0 + 10))["stalls"]
    assert stall["users"] == 4 and 65 <= stall["hidden_requests"] <= 80


def test_one_slow_user_is_not_a_stall_and_a_healthy_run_has_none():
    assert _summary(_cadence(4, 10, (T0 + 4, T0 + 6), blocked=1))["stalls"] == []
    assert _summary(_cadence(4, 10, None, 0))["stalls"] == []


# --- which latency the gate takes ------------------------------------------------------------


def _file(tmp_path, body: str):
    path = tmp_path / "REQ-A-1.yaml"
    path.write_text("requirement: REQ-A-1\ntitle: t\nthresholds:\n" + body)
    return {"REQ-A-1": load_threshold_file(path)}


def _scope(**extra) -> dict:
    stats = {
        "requests": 1000,
        "failures": 0,
        "error_rate": 0.0,
        "throughput": 10.0,
        "response_time_ms": {"p95": 50.0, "p99": 80.0},
        "response_time_ci95_ms": {},
        "paced_requests": 0,
        "omitted": 0,
        "stall_hidden": 0,
    }
    return {**stats, **extra}


def _verdict(files, stats, stalls=()):
    return evaluate(files, {"requirements": {"REQ-A-1": stats}, "requests": [], "stalls": list(stalls)})


def test_a_paced_scope_gates_the_intended_latency_unless_told_service(tmp_path):
    paced = _scope(
        paced_requests=1000,
        omitted=40,
        on_time=0.96,
        schedule_attainment=0.96,
        intended_response_time_ms={"p95": 900.0, "p99": 1800.0},
        intended_response_time_ci95_ms={},
    )
    files = _file(
        tmp_path, '  - metric: p95\n    alert: ">500ms"\n  - metric: p95\n    latency: service\n    alert: ">500ms"\n'
    )
    default, service = _verdict(files, paced).thresholds
    assert (default.status, default.value, default.latency) == ("fail", 900.0, "intended")
    assert "p95 (intended) = 900.0 ms crossed alert >500ms" in default.reason
    assert (service.status, service.value, service.latency) == ("pass", 50.0, "service")
    assert default.to_dict()["latency"] == "intended"


def test_intended_without_paced_users_and_a_schedule_never_met_are_inconclusive(tmp_path):
    files = _file(tmp_path, '  - metric: p95\n    latency: intended\n    alert: ">500ms"\n')
    (r,) = _verdict(files, _scope()).thresholds
    assert r.status == "inconclusive" and "no request in this scope came from a paced user" in r.reason
    never = _scope(
        paced_requests=1000,
        omitted=900,
        on_time=0.0,
        schedule_attainment=0.52,
        intended_response_time_ms={"p95": 90.0},
        intended_response_time_ci95_ms={},
    )
    (r,) = _verdict(files, never).thresholds
    assert r.status == "inconclusive" and r.value is None
    assert "the schedule was never met: 0% of the paced iterations started on their slot" in r.reason


@pytest.mark.parametrize(
    "metric, hidden, status",
    [("p95", 40, "pass"), ("p95", 60, "inconclusive"), ("p99", 11, "inconclusive"), ("p50", 400, "pass")],
)
def test_a_stall_makes_a_percentile_inconclusive_only_when_it_hides_more_than_its_tail(
    tmp_path, metric, hidden, status
):
    files = _file(tmp_path, f'  - metric: {metric}\n    alert: ">500ms"\n')
    stats = _scope(stall_hidden=hidden, response_time_ms={"p50": 5.0, "p95": 50.0, "p99": 80.0})
    stall = {"start": T0, "end": T0 + 4, "seconds": 4.0, "users": 10, "active_users": 10, "hidden_requests": hidden}
    (r,) = _verdict(files, stats, [stall]).thresholds
    assert r.status == status
    if status == "inconclusive":
        assert "the target stalled at " in r.reason and "for 4.0 s (10 of 10 users blocked)" in r.reason


def test_latency_key_errors_name_file_line_and_form(tmp_path):
    with pytest.raises(ConfigError) as err:
        _file(tmp_path, '  - metric: p95\n    latency: schedule\n    alert: ">500ms"\n')
    assert str(err.value) == (
        f"{tmp_path / 'REQ-A-1.yaml'}:5: thresholds[0].latency: 'schedule' is not a kind of "
        "latency; expected intended (from the schedule of paced users) or service (Locust's "
        "response time)"
    )
    with pytest.raises(ConfigError, match=r":5: thresholds\[0\].latency: error_rate is not a response time"):
        _file(tmp_path, '  - metric: error_rate\n    latency: service\n    alert: ">1%"\n')


def test_adopt_swaps_locust_pacing_for_the_recording_drop_in_and_spreads_the_phases(monkeypatch):
    from locust import User

    class Shop(User):
        wait_time = locust_throughput(4)

        def on_start(self):
            self.started = True

    class Browse(User):
        wait_time = between(1, 2)

    assert pacing.adopt([Shop, Browse]) == {"Shop": 0.25}
    assert Shop.wait_time.loadgate_period == 0.25 and Browse.wait_time.__module__ == "locust.user.wait_time"
    delays = []
    monkeypatch.setattr(pacing.gevent, "sleep", delays.append)
    monkeypatch.setattr(pacing, "USERS", {})  # the states this test registers stay out of other tests
    for _ in range(200):
        user = Shop.__new__(Shop)
        Shop.on_start(user)
        assert user.started
    assert all(0 <= d < 0.25 for d in delays) and len(delays) == 200
    counts = np.histogram(delays, bins=5, range=(0, 0.25))[0]
    assert counts.min() >= 20  # uniform over the period: no lockstep (200 users, 40 expected per bin)
    assert pacing.adopt([Shop]) == {"Shop": 0.25} and Shop.on_start.__wrapped__.__name__ == "on_start"  # once


def test_the_report_says_which_requirements_had_bunched_arrivals():
    from loadgate.outputs.report import render_report

    def stats(share, bunched):
        return {
            "requests": 400,
            "failures": 0,
            "error_rate": 0.0,
            "throughput": 40.0,
            "paced_requests": 400,
            "omitted": 0,
            "schedule_attainment": 1.0,
            "on_time": 1.0,
            "arrivals_busiest_tenth": share,
            "arrivals_bunched": bunched,
            "response_time_ms": {"p95": 2.0, "p99": 3.0},
            "intended_response_time_ms": {"p95": 2.0, "p99": 3.0},
        }

    evil = "REQ-<b>X</b>"
    summary = {
        "window": {"start": T0, "end": T0 + 10, "seconds": 10.0},
        "overall": stats(0.55, True),
        "requirements": {"REQ-SPREAD-1": stats(0.11, False), evil: stats(0.55, True)},
        "requests": [],
    }
    html = render_report(
        verdict={"verdict": "pass", "exit_code": 0, "reasons": [], "thresholds": [], "strict": False},
        summary=summary,
        run={"requirements": ["REQ-SPREAD-1", evil], "start": T0, "end": T0 + 10},
    )
    assert html.count("arrivals were bunched") == 1
    assert "<b>REQ-&lt;b&gt;X&lt;/b&gt;: arrivals were bunched.</b> 55" in html
    assert "REQ-SPREAD-1: arrivals were bunched" not in html
    assert "<b>X</b>" not in html

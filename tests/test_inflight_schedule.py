"""Requests unanswered when the run stopped, piece by piece with hand-computed answers: the slots a stuck
paced iteration missed, their latencies from the schedule, unpaced users stuck alone, the run's note."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from loadgate.analysis.run_window import summarize_run
from loadgate.analysis.schedule import with_schedule
from loadgate.analysis.stalls import stuck_problem
from loadgate.analysis.summary import summarize
from loadgate.analysis.window import Window
from loadgate.data.samples import SCHEMA
from loadgate.run.collect import unanswered_note

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # as in test_recorder: no gevent patching of pytest
try:
    from loadgate import pacing
    from loadgate.plugin import attribution
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]

T0 = 1_800_000_000.0
MESSAGE = "no response before the run stopped"


# --- the slots a stuck paced iteration missed --------------------------------------------------


def test_a_request_unanswered_at_stop_carries_every_slot_of_its_iteration_until_the_stop():
    s = pacing.UserState(0, 0.1)
    s.begin(T0)  # on its slot at T0; its request, sent at once, is unanswered when the run stops at T0+1.05
    s.unanswered(T0, T0 + 1.05, before_window=False)
    # V = 1050 ms from the slot; slots T0+0.1 .. T0+1.0 (10 of them) came and went before the stop
    assert (s.omitted, s.late_ms, s.first, s.wake) == (10, 0.0, True, T0)


def test_a_late_iteration_that_hangs_merges_its_skipped_slots_with_those_it_missed_after():
    s = pacing.UserState(0, 0.1)
    s.begin(T0)
    s.first = False
    s.next_wait(T0 + 0.35)  # due at T0+0.1, started 250 ms late: T0+0.2 and T0+0.3 skipped
    assert (s.omitted, s.late_ms) == (2, pytest.approx(250.0))
    s.unanswered(T0 + 0.35, T0 + 0.98, before_window=False)
    # V = 630 + 250 = 880 ms; slots T0+0.2 .. T0+0.9: 8, each waited 880 - 100 j = T0+0.98 - slot_j
    assert s.omitted == 8 and s.late_ms == pytest.approx(250.0)


def test_a_request_sent_before_the_window_counts_the_windows_slots_only():
    s = pacing.UserState(0, 0.1)
    s.begin(T0 - 1.0)
    s.first = False
    s.next_wait(T0 - 0.5)  # late, 3 skipped slots before the window
    s.unanswered(T0, T0 + 0.55, before_window=True)  # recorded from the window's start, T0
    assert (s.omitted, s.late_ms, s.first) == (5, 0.0, True)  # T0+0.1 .. T0+0.5


def test_a_second_request_of_an_iteration_that_hangs_carries_the_slots_and_unpaced_users_none():
    s = pacing.UserState(0, 0.2)
    s.begin(T0)
    s.first = False  # the iteration's first request was answered; its second hangs from T0+0.05
    s.unanswered(T0 + 0.05, T0 + 0.6, before_window=False)
    assert (s.omitted, s.first) == (2, True)  # V = 550 ms: slots T0+0.2, T0+0.4 (T0+0.6 not before the stop)
    u = pacing.UserState(0, None)
    u.unanswered(T0, T0 + 5, before_window=False)
    assert (u.omitted, u.first) == (0, False)


def test_the_requirement_of_a_task_unwound_by_the_stop_is_read_from_its_frames():
    def frames_of(fn):
        try:
            fn(None)
        except KeyboardInterrupt as e:  # (a BaseException, as the GreenletExit that stops a user)
            tb, frames = e.__traceback__, []
            while tb is not None:
                frames.append(tb.tb_frame)
                tb = tb.tb_next
            return frames
        raise AssertionError("not raised")

    def request(_user):
        raise KeyboardInterrupt

    inner = attribution._with_requirement(request, "REQ-INNER-1")
    outer = attribution._with_requirement(lambda user: inner(user), "REQ-OUTER-1")
    assert attribution.code_in(frames_of(outer)) == attribution.REQ_CODES["REQ-INNER-1"]  # the innermost task's
    assert attribution.code_in(frames_of(request)) is None  # outside any task: the run's requirements
    assert attribution.current == {}  # the wrappers let go of the greenlet on the way out


# --- their latencies from the schedule ----------------------------------------------------------


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
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=SCHEMA)


def _summary(table: pa.Table, window: Window) -> dict:
    return with_schedule(summarize(table, window, requirements=["REQ-A-1"]), table, window, requirements=["REQ-A-1"])


def test_a_target_that_never_answered_gives_each_slot_of_the_window_its_wait_until_the_stop():
    # One user paced at 100 ms, its only request unanswered: recorded from the window's start T0 to the
    # stop at T0+1.05 (1050 ms), 10 slots missed. Window [T0, T0+1]: the request and the slots T0+0.1 ..
    # T0+1.0, which waited 950, 850, ..., 50 ms.
    rows = [
        dict(
            timestamp=T0,
            response_time_ms=1050.0,
            intended_ms=1050.0,
            omitted=10,
            period_ms=100.0,
            success=False,
            exception=MESSAGE,
            status_code=0,
        )
    ]
    o = _summary(_table(rows), Window(T0, T0 + 1))["overall"]
    assert (o["requests"], o["failures"], o["error_rate"], o["omitted"]) == (1, 1, 1.0, 10)
    assert o["schedule_attainment"] == 1 / 11 and o["on_time"] == 1.0  # it started on its slot
    intended = o["intended_response_time_ms"]
    assert (intended["min"], intended["max"], intended["p50"]) == (50.0, 1050.0, 550.0)
    assert intended["p95"] == 1000.0  # rank 9.5 of 50..1050: halfway from 950 to 1050
    assert o["response_time_ms"]["p50"] == 1050.0


def test_three_of_ten_users_stuck_fill_a_third_of_the_slots():
    # 7 users answered in 2 ms every 100 ms over [T0, T0+1); 3 unanswered from T0 until the stop at T0+1.0
    rows = [
        dict(timestamp=T0 + k / 10, response_time_ms=2.0, intended_ms=2.0, omitted=0, period_ms=100.0, user=u)
        for u in range(7)
        for k in range(10)
    ]
    rows += [
        dict(
            timestamp=T0,
            response_time_ms=1000.0,
            intended_ms=1000.0,
            omitted=9,
            period_ms=100.0,
            user=u,
            success=False,
            exception=MESSAGE,
            status_code=0,
        )
        for u in (7, 8, 9)
    ]
    o = _summary(_table(rows), Window(T0, T0 + 1))["overall"]
    assert (o["requests"], o["failures"], o["omitted"]) == (73, 3, 27)
    assert o["error_rate"] == 3 / 73 and o["schedule_attainment"] == 73 / 100
    # 70 values of 2 ms, and for each stuck user 1000, 900, ..., 100: ranks 94 and 95 of 100 are both 900
    want = np.array([2.0] * 70 + [1000.0 - 100 * j for j in range(10)] * 3)
    assert o["intended_response_time_ms"]["p95"] == np.percentile(want, 95) == 900.0


# --- unpaced users stuck alone -------------------------------------------------------------------


def _cadence(users: int, seconds: float, stuck: dict[int, tuple[float, float]]) -> pa.Table:
    """Users sending a 2 ms request every 102 ms; user u in ``stuck`` waits from its [0] to its [1]."""
    rows = []
    for u in range(users):
        t = T0 + u * 0.01
        while t < T0 + seconds:
            if u in stuck and stuck[u][0] <= t < stuck[u][1]:
                rows.append(
                    dict(
                        timestamp=t, response_time_ms=(stuck[u][1] - t) * 1000, user=u, success=False, exception=MESSAGE
                    )
                )
                t = stuck[u][1] + 0.102
                continue
            rows.append(dict(timestamp=t, response_time_ms=2.0, user=u))
            t += 0.102
    return _table(rows)


def test_one_user_stuck_for_a_quarter_of_the_window_is_named_and_a_shorter_wait_is_not():
    s = _summary(_cadence(4, 10, {1: (T0 + 3, T0 + 7)}), Window(T0, T0 + 10))
    assert s["stalls"] == []  # 1 of 4 users: no crowd stall
    [u] = s["stuck_users"]
    assert (u["user"], u["worker"], u["request"], u["requirement"]) == (1, "local", "GET /x", "REQ-A-1")
    # its request at T0+3.07 (the first of its 102 ms steps after T0+3) waited until T0+7
    assert u["seconds"] == pytest.approx(3.93) and u["share"] == pytest.approx(0.393)
    assert _summary(_cadence(4, 10, {1: (T0 + 3, T0 + 5)}), Window(T0, T0 + 10))["stuck_users"] == []  # 20%
    line = stuck_problem(s["stuck_users"])
    assert (
        line.startswith(
            "1 user sent nothing while one request went unanswered: user 1 of local for 3.9 s (39% of the window) from "
        )
        and "waiting on GET /x" in line
    )


def test_stuck_users_are_a_problem_of_the_run_and_named_five_at_most(tmp_path):
    import pyarrow.parquet as pq

    table = _cadence(8, 10, {u: (T0 + 1, T0 + 9.5) for u in range(7)})  # 7 of 8, each on its own: a crowd
    pq.write_table(table, tmp_path / "samples.parquet")
    summary, problems = summarize_run(str(tmp_path), {"start": T0, "end": T0 + 10, "requirements": ["REQ-A-1"]})
    assert summary["stalls"] and summary["stuck_users"] == [] and problems == []  # the crowd stall tells it
    stuck = [
        {
            "worker": "w1",
            "user": u,
            "start": T0,
            "seconds": 9.0 - u,
            "share": 0.9 - u / 10,
            "request": "GET /x",
            "requirement": "REQ-A-1",
        }
        for u in range(7)
    ]
    line = stuck_problem(stuck)
    assert line.startswith("7 users sent nothing") and "user 4 of w1 for 5.0 s (50% of the window)" in line
    assert "user 5 of" not in line and line.count("waiting on") == 5 and "; and 2 more;" in line


def test_the_runs_note_names_the_unanswered_requests_most_first():
    note = unanswered_note({"requests": 9, "by_request": {f"GET /r{i}": 1 for i in range(5)} | {"POST /login": 4}})
    assert note.startswith(
        "9 requests had no response when the run stopped (POST /login x4, GET /r0 x1, GET /r1 x1, "
        "GET /r2 x1, GET /r3 x1, ...): recorded as failed samples ('no response before the run "
        "stopped')"
    )

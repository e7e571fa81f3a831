"""The C request listener (``loadgate/run/_rowpack.c``) against the Python one it stands in for.

Both are fed the same request events, whatever they carry (the odd values of custom clients, users
paced or not, first requests of iterations or not); each must leave the same packed bytes, the same
code tables, the same schedule counts and the same exception, if one is raised.

Where the C listener could not be built (no compiler at install time), these tests skip; CI sets
``LOADGATE_REQUIRE_NATIVE=1``, which makes its absence a failure.
"""
from __future__ import annotations

import decimal
import http
import os
from unittest import mock

import numpy as np
import pytest
from greenlet import getcurrent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # (see test_recorder.py)
try:
    from loadgate.run import attribution, columns, pacing
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
from loadgate.run.redact import NameRedactor

if columns.NativeListener is None:
    if os.environ.get("LOADGATE_REQUIRE_NATIVE"):
        raise AssertionError("LOADGATE_REQUIRE_NATIVE is set but loadgate/run/_rowpack.c was not built: "
                             "reinstall with a C compiler and Python's headers (pip install -e .)")
    pytest.skip("the C listener was not built here (no C compiler at install time)", allow_module_level=True)


class _Resp:
    def __init__(self, code):
        self.status_code = code


class _NoCode:
    pass


class _RaisingCode:
    @property
    def status_code(self):
        raise RuntimeError("status_code is broken")


class _BadRepr(Exception):
    def __repr__(self):
        raise RuntimeError("no repr")


_ODD_NUMBERS = [None, True, "12", decimal.Decimal("1.5"), np.float64(2.5), np.int32(7), 2**70, -2**70, 2**2000,
                float("nan"), float("inf"), [1]]
numbers = st.one_of(st.floats(), st.integers(-2**40, 2**40), st.sampled_from(_ODD_NUMBERS))
codes = st.one_of(st.integers(-2**33, 2**33), st.sampled_from([None, 0, "204", http.HTTPStatus.OK, True, 1.5]))
responses = st.one_of(st.none(), codes.map(_Resp), st.sampled_from([_NoCode(), _RaisingCode()]))
exceptions = st.sampled_from([None, None, ValueError("HTTP 500 at /a?token=abc"), ConnectionError("refused"),
                              _BadRepr()])
events = st.fixed_dictionaries({
    "request_type": st.sampled_from(["GET", "POST", 42, None]),
    "name": st.sampled_from(["/a", "/b?password=x", 7, ("t",), ["unhashable"]]),
    "response_time": numbers,
    "response_length": numbers,
    "response": responses,
    "exception": exceptions,
    "start_time": st.one_of(st.floats(1e9, 2e9), numbers),
    "requirement": st.sampled_from([None, "REQ-A", "REQ-B"]),
})
states = st.one_of(
    st.just(None),  # not a user: pacing.NOBODY
    st.tuples(st.integers(0, 2**31 - 1), st.one_of(st.none(), st.floats(0.01, 10)), st.booleans(),
              st.integers(0, 2**31 - 1), st.floats(0, 1e4), st.floats(-2, 2)),
)


def _state(spec):
    if spec is None:
        return pacing.NOBODY
    number, period, first, omitted, late, wake_offset = spec
    state = pacing.UserState(number, period)
    if period is not None:
        state.pace(period)
        state.begin(1_500_000_000.0)
        state.wake = 1_500_000_000.0 + wake_offset
    state.first, state.omitted, state.late_ms = first, omitted, late
    return state


def _run(native: bool, evs, spec, attributed: bool, paced: bool, users):
    """Fire ``evs`` into a fresh Columns through one listener: (outcome per event, rows, tables, counts, first)."""
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(users, attributed, paced, native=native)
    assert type(listener).__name__ == ("Listener" if native else "function")
    g = getcurrent()
    state = _state(spec)
    pacing.USERS[g] = state
    counts = list(pacing.COUNTS)
    outcomes = []
    clock = mock.Mock()
    clock.time.return_value = 1_700_000_000.0
    try:
        with mock.patch.object(columns, "time", clock):  # the careful path's "now", for a start time that is not one
            for ev in evs:
                if ev["requirement"]:
                    attribution.current[g] = attribution.req_code(ev["requirement"])
                try:
                    listener(request_type=ev["request_type"], name=ev["name"], response_time=ev["response_time"],
                             response_length=ev["response_length"], response=ev["response"], context={},
                             exception=ev["exception"], start_time=ev["start_time"], url="http://127.0.0.1/x")
                    outcomes.append(None)
                except Exception as e:  # noqa: BLE001 - both must raise the same
                    outcomes.append(type(e).__name__)
                finally:
                    attribution.current.pop(g, None)
    finally:
        pacing.USERS.pop(g, None)
    deltas = [pacing.COUNTS[0] - counts[0], pacing.COUNTS[1] - counts[1]]
    return (outcomes, bytes(cols.rows), cols.chunks, cols.key_types, cols.key_names, cols.exc_texts, deltas,
            state.first)


class _Huge:
    """A user count past int32 (len() of a runner's users, as UserCount gives it)."""

    def __len__(self):
        return 2**31 + 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evs=st.lists(events, min_size=1, max_size=6), spec=states, attributed=st.booleans(), paced=st.booleans(),
       users=st.sampled_from([set(), {1, 2, 3}, _Huge()]))
def test_the_c_listener_records_what_the_python_listener_records(evs, spec, attributed, paced, users):
    python = _run(False, evs, spec, attributed, paced, users)
    native = _run(True, evs, spec, attributed, paced, users)
    assert native == python


def test_a_positional_call_or_a_missing_argument_is_the_python_listener_s():
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(set(), False, False, native=True)
    listener("GET", "/p", 1.0, 10, response=_Resp(200), start_time=1.5e9)  # positional: handed to Python
    with pytest.raises(TypeError, match="response_length"):
        listener(request_type="GET", name="/q", response_time=1.0)
    rows = columns.build_batch(cols.take(), "w", "R").to_pylist()
    assert [(r["name"], r["status_code"], r["response_length"]) for r in rows] == [("/p", 200, 10)]


def test_the_listener_in_use_is_the_c_one_unless_told_otherwise(monkeypatch):
    cols = columns.Columns(NameRedactor())
    assert type(cols.listener(set(), True, True)) is columns.NativeListener
    monkeypatch.setattr(columns, "NATIVE", False)
    assert callable(cols.listener(set(), True, True)) and not isinstance(cols.listener(set(), True, True),
                                                                          columns.NativeListener)

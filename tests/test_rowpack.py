"""The C request listener (``loadgate/plugin/_rowpack.c``) against the Python one it stands in for.

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
import re
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from greenlet import getcurrent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # (see test_recorder.py)
try:
    from locust.contrib.fasthttp import ErrorResponse, FastResponse

    from loadgate import pacing
    from loadgate.plugin import attribution, columns
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
from loadgate.shared.redact import NameRedactor

if columns.NativeListener is None:
    if os.environ.get("LOADGATE_REQUIRE_NATIVE"):
        raise AssertionError(
            "LOADGATE_REQUIRE_NATIVE is set but loadgate/plugin/_rowpack.c was not built: "
            "reinstall with a C compiler and Python's headers (pip install -e .)"
        )
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


class _Parser:
    """What FastResponse's ``_response`` is to its status_code property: something with get_code()."""

    def __init__(self, code):
        self.code = code

    def get_code(self):
        if isinstance(self.code, Exception):
            raise self.code
        return self.code


class _OwnCode(FastResponse):
    """A FastResponse whose status_code is not Locust's property: read as any attribute."""

    @property
    def status_code(self):
        return 299


class _Hooked(FastResponse):
    """A FastResponse with a __getattr__ (never called for status_code, which the class has)."""

    def __getattr__(self, name):
        return 477


def _fast(cls, inner):
    response = object.__new__(cls)
    if inner is not _NoCode:
        response._response = inner
    return response


class _BadRepr(Exception):
    def __repr__(self):
        raise RuntimeError("no repr")


_ODD_NUMBERS = [
    None,
    True,
    "12",
    decimal.Decimal("1.5"),
    np.float64(2.5),
    np.int32(7),
    2**70,
    -(2**70),
    2**2000,
    float("nan"),
    float("inf"),
    [1],
]
numbers = st.one_of(st.floats(), st.integers(-(2**40), 2**40), st.sampled_from(_ODD_NUMBERS))
codes = st.one_of(st.integers(-(2**33), 2**33), st.sampled_from([None, 0, "204", http.HTTPStatus.OK, True, 1.5]))
# FastHttpUser's responses: Locust's status_code property over a parser (or none), and its subclasses
parsers = st.one_of(
    st.none(),
    st.just(_NoCode),
    st.just(object()),
    codes.map(_Parser),
    st.sampled_from([AttributeError("no code"), RuntimeError("parser broke")]).map(_Parser),
)
fast_responses = st.builds(_fast, st.sampled_from([FastResponse, ErrorResponse, _OwnCode, _Hooked]), parsers)
responses = st.one_of(st.none(), codes.map(_Resp), st.sampled_from([_NoCode(), _RaisingCode()]), fast_responses)
exceptions = st.sampled_from(
    [None, None, ValueError("HTTP 500 at /a?token=abc"), ConnectionError("refused"), _BadRepr()]
)
events = st.fixed_dictionaries(
    {
        "request_type": st.sampled_from(["GET", "POST", 42, None]),
        "name": st.sampled_from(["/a", "/b?password=x", 7, ("t",), ["unhashable"]]),
        "response_time": numbers,
        "response_length": numbers,
        "response": responses,
        "exception": exceptions,
        "start_time": st.one_of(st.floats(1e9, 2e9), numbers),
        "requirement": st.sampled_from([None, "REQ-A", "REQ-B"]),
        # Locust passes all of these, keyed by interned names; a hand-made call may leave some out, or build its keys
        "omit": st.sets(st.sampled_from(["response", "exception", "start_time", "context", "url"])),
        "fresh_keys": st.sets(
            st.sampled_from(
                ["request_type", "name", "response_time", "response_length", "response", "exception", "start_time"]
            )
        ),
    }
)
states = st.one_of(
    st.just(None),  # not a user: pacing.NOBODY
    st.tuples(
        st.integers(0, 2**31 - 1),
        st.one_of(st.none(), st.floats(0.01, 10)),
        st.booleans(),
        st.integers(0, 2**31 - 1),
        st.floats(0, 1e4),
        st.floats(-2, 2),
    ),
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
                kwargs = {
                    "request_type": ev["request_type"],
                    "name": ev["name"],
                    "response_time": ev["response_time"],
                    "response_length": ev["response_length"],
                    "response": ev["response"],
                    "context": {},
                    "exception": ev["exception"],
                    "start_time": ev["start_time"],
                    "url": "http://127.0.0.1/x",
                }
                kwargs = {
                    ("".join(["", k]) if k in ev["fresh_keys"] else k): v
                    for k, v in kwargs.items()
                    if k not in ev["omit"]
                }  # "".join: an equal key that is not the interned one
                try:
                    listener(**kwargs)
                    outcomes.append(None)
                except Exception as e:  # noqa: BLE001 - both must raise the same
                    outcomes.append(type(e).__name__)
                finally:
                    attribution.current.pop(g, None)
    finally:
        pacing.USERS.pop(g, None)
    deltas = [pacing.COUNTS[0] - counts[0], pacing.COUNTS[1] - counts[1]]
    return (
        outcomes,
        bytes(cols.rows),
        cols.chunks,
        cols.key_types,
        cols.key_names,
        cols.exc_texts,
        deltas,
        state.first,
    )


class _Huge:
    """A user count past int32 (len() of a runner's users, as UserCount gives it)."""

    def __len__(self):
        return 2**31 + 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    evs=st.lists(events, min_size=1, max_size=6),
    spec=states,
    attributed=st.booleans(),
    paced=st.booleans(),
    users=st.sampled_from([set(), {1, 2, 3}, _Huge()]),
)
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
    assert callable(cols.listener(set(), True, True)) and not isinstance(
        cols.listener(set(), True, True), columns.NativeListener
    )


def test_fasthttp_s_status_code_is_read_through_its_public_property():
    """Both listeners read ``response.status_code`` as any caller would: Locust's property runs once a request."""
    prop = FastResponse.__dict__["status_code"]
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(set(), False, False, native=True)
    python = cols.listener(set(), False, False, native=False)
    called = []

    def profile(frame, event, _arg):
        if event == "call" and frame.f_code is prop.fget.__code__:
            called.append(frame.f_code.co_name)

    def fire(fn, response):
        sys.setprofile(profile)
        try:
            fn(
                request_type="GET",
                name="/f",
                response_time=1.0,
                response_length=1,
                response=response,
                context={},
                exception=None,
                start_time=1.5e9,
                url="u",
            )
        finally:
            sys.setprofile(None)

    fire(listener, _fast(FastResponse, _Parser(201)))
    fire(listener, _fast(FastResponse, None))
    fire(python, _fast(FastResponse, _Parser(202)))
    assert called == ["status_code"] * 3
    rows = columns.build_batch(cols.take(), "w", "R").to_pylist()
    assert [r["status_code"] for r in rows] == [201, 0, 202]


_SOURCE = os.path.join(os.path.dirname(columns.__file__), "_rowpack.c")


def test_the_c_listener_uses_only_cpython_s_public_c_api():
    """No underscore-prefixed CPython name (``_PyType_Lookup``, ``_Py_...``): those change between releases."""
    with open(_SOURCE) as f:
        private = sorted(set(re.findall(r"\b_Py\w*", f.read())))
    assert private == [], f"{_SOURCE} uses CPython's private API: {private}"


def test_the_c_listener_reads_no_private_attribute():
    """The attribute names it looks up (its interned strings) are public ones: no Locust internals."""
    with open(_SOURCE) as f:
        names = re.findall(r'INTERN\(\w+, "([^"]*)"\)', f.read())
    assert "status_code" in names and "response" in names  # (the pattern still finds them)
    assert [n for n in names if n.startswith("_")] == []


def test_only_the_bench_s_build_times_the_listener(tmp_path):
    """bench/recorder_split.py builds the listener with -DLOADGATE_TIMING and reads its timer after a run;
    the installed build has no timer, and the timed one still records the same rows."""
    from loadgate.plugin import _rowpack

    assert not hasattr(_rowpack, "timing")
    saved = list(sys.path)  # the bench module puts bench/ and the repository first; undone after the import
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    try:
        import recorder_split
    finally:
        sys.path[:] = saved
    src = recorder_split.build(str(tmp_path))
    code = """if True:
        import os
        from loadgate.plugin import _rowpack, columns
        from loadgate.shared.redact import NameRedactor
        assert _rowpack.__file__.startswith(os.environ["PYTHONPATH"]), _rowpack.__file__
        cols = columns.Columns(NameRedactor())
        listener = cols.listener(set(), False, False)
        assert type(listener) is columns.NativeListener
        for i in range(3):
            listener(request_type="GET", name="/t", response_time=2.0, response_length=5, response=None,
                     context={}, exception=None, start_time=1.5e9 + i, url="u")
        ns, calls = _rowpack.timing()
        rows = columns.build_batch(cols.take(), "w", "R").to_pylist()
        print(calls, ns > 0, [(r["name"], r["response_time_ms"]) for r in rows])
    """
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=src),
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["3", "True"]
    assert "[('/t', 2.0), ('/t', 2.0), ('/t', 2.0)]" in done.stdout

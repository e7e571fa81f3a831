"""The packed row's one spec (``Columns.FIELDS`` and ``SCHEDULE`` in ``loadgate/plugin/columns.py``): each
listener puts each column where the spec says, and the C listener packs whatever order and integer widths
the spec gives it (it is handed the layout at init), or refuses at init a column it cannot compute.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from greenlet import getcurrent
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"  # (see test_recorder.py)
try:
    from loadgate import pacing
    from loadgate.plugin import attribution, columns
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
from loadgate.shared.redact import NameRedactor

needs_c = pytest.mark.skipif(
    columns.NativeListener is None and not os.environ.get("LOADGATE_REQUIRE_NATIVE"),
    reason="the C listener was not built here (no C compiler at install time)",
)


class _Resp:
    def __init__(self, code):
        self.status_code = code


# One request whose every column has a value no other column has.
START, RT, LENGTH, CODE, NUMBER, PERIOD_S, LATE_MS, OMITTED = 1_500_000_001.25, 12.5, 3_000, 201, 7, 2.0, 4.5, 3
USERS = {object() for _ in range(5)}


def _fire(listener, cols, paced: bool) -> None:
    g = getcurrent()
    state = pacing.UserState(NUMBER, PERIOD_S if paced else None)
    if paced:
        state.pace(PERIOD_S)
        state.begin(START - 0.001)
        state.first, state.omitted, state.late_ms = True, OMITTED, LATE_MS
    pacing.USERS[g] = state
    cols.new_key("GET", "/first")  # key 0: the request's own key is 1
    attribution.current[g] = attribution.req_code("REQ-SPEC")
    try:
        listener(
            request_type="GET",
            name="/spec",
            response_time=RT,
            response_length=LENGTH,
            response=_Resp(CODE),
            context={},
            exception=ValueError("x"),
            start_time=START,
            url="u",
        )
    finally:
        pacing.USERS.pop(g, None)
        attribution.current.pop(g, None)


def _expected(paced: bool) -> dict:
    values = {
        "ts": START,
        "rt": RT,
        "length": LENGTH,
        "code": CODE,
        "users": len(USERS),
        "key": 1,
        "exc": 1,
        "user": NUMBER,
        "req": attribution.req_code("REQ-SPEC"),
    }
    if paced:
        values.update(intended=RT + LATE_MS, omitted=OMITTED, period=PERIOD_S * 1000.0)
    return values


@pytest.mark.parametrize("paced", [False, True])
@pytest.mark.parametrize("native", [False, pytest.param(True, marks=needs_c)])
def test_each_listener_puts_each_column_where_the_spec_says(native, paced):
    cols = columns.Columns(NameRedactor())
    listener = cols.listener(USERS, True, paced, native=native)
    _fire(listener, cols, paced)
    row = np.frombuffer(bytes(cols.rows), columns.Columns.LAYOUTS[paced][1])
    assert len(row) == 1
    assert {name: row[name][0].item() for name, _t in columns.Columns.SPECS[paced]} == _expected(paced)


@needs_c
@pytest.mark.parametrize("paced", [False, True])
def test_the_c_listener_takes_its_row_size_from_the_spec(paced):
    listener = columns.Columns(NameRedactor()).listener(set(), False, paced, native=True)
    assert listener.row_size == columns.Columns.LAYOUTS[paced][0].size


def _respec(cols: columns.Columns, specs: dict) -> None:
    """``cols`` packs rows of ``specs`` (as if columns.py's spec were it)."""
    cols.SPECS = specs
    cols.LAYOUTS = {
        paced: (
            struct.Struct("<" + "".join(t for _a, t in spec)),
            np.dtype([(a, {"d": "<f8", "q": "<i8", "i": "<i4"}[t]) for a, t in spec]),
        )
        for paced, spec in specs.items()
    }


@st.composite
def specs(draw):
    """The spec's columns in another order, each integer column as int32 or int64."""

    def retyped(fields):
        return [(a, t if t == "d" else draw(st.sampled_from("iq"))) for a, t in fields]

    fields = draw(st.permutations(retyped(columns.Columns.FIELDS)))
    schedule = retyped(columns.Columns.SCHEDULE)
    paced = draw(st.permutations([*fields, *schedule]))
    return {False: tuple(fields), True: tuple(paced)}


@needs_c
@settings(max_examples=60, deadline=None)
@given(spec=specs(), paced=st.booleans())
def test_the_c_listener_packs_whatever_layout_the_spec_gives(spec, paced):
    cols = columns.Columns(NameRedactor())
    _respec(cols, spec)
    listener = cols.listener(USERS, True, paced, native=True)
    assert listener.row_size == cols.LAYOUTS[paced][0].size
    _fire(listener, cols, paced)
    expected = _expected(paced)
    assert bytes(cols.rows) == cols.LAYOUTS[paced][0].pack(*[expected[a] for a, _t in spec[paced]])


@needs_c
@pytest.mark.parametrize(
    ("layout", "paced", "error", "message"),
    [
        ((("ts", "d"), ("colour", "i")), False, ValueError, "cannot pack column 'colour': it knows no such column"),
        ((("ts", "d"), ("ts", "d")), False, ValueError, "column 'ts': it is in the layout twice"),
        ((("ts", "i"),), False, TypeError, "cannot pack column 'ts' as 'i'"),
        ((("code", "d"),), False, TypeError, "cannot pack column 'code' as 'd'"),
        ((("code", "h"),), False, TypeError, "cannot pack column 'code' as 'h'"),
        ((("omitted", "i"),), False, ValueError, "column 'omitted' is a paced user's"),
        (("ts",), False, TypeError, "(name, typecode) pair"),
    ],
)
def test_the_c_listener_refuses_at_init_a_column_it_cannot_pack(layout, paced, error, message):
    cols = columns.Columns(NameRedactor())
    cols.SPECS = {paced: layout}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        cols.listener(set(), False, paced, native=True)

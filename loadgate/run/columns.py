"""The recorder's hot path: each request's numbers into ``array.array`` column buffers, its strings as codes;
a flush copies the buffers out and :func:`build_batch` makes the Arrow record batch of them, on any thread.
"""
from __future__ import annotations

import math
import time
from array import array

import pyarrow as pa
import pyarrow.compute as pc
from greenlet import getcurrent
from locust.runners import Runner

from loadgate.data.arrowbuf import int32_array, string_array
from loadgate.data.samples import SCHEMA
from loadgate.run.attribution import REQ_TEXTS
from loadgate.run.attribution import current as _current
from loadgate.run.pacing import COUNTS, NOBODY, USERS, UserState
from loadgate.run.pacing import state_of as state_of_
from loadgate.run.redact import redact

_EXCEPTION_CACHE_MAX = 20_000  # distinct names / exception texts remembered (redacted once each)


class UserCount:
    """``len()`` is the runner's user count. For local and worker runners that is the size of the set of
    user greenlets (what ``Runner.user_count`` computes, minus two Python calls); else the property."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def __len__(self) -> int:
        return self.runner.user_count

    @classmethod
    def of(cls, runner):
        greenlets = getattr(getattr(runner, "user_greenlets", None), "greenlets", None)
        if type(runner).user_count is Runner.user_count and isinstance(greenlets, set):
            return greenlets
        return cls(runner)


class Columns:
    """The samples of one flush interval, column by column, as they are recorded.

    Numbers go straight into ``array.array`` buffers and strings become small integer codes, so the
    hot path keeps no Python object alive (a tuple per request kept ~4 objects per request alive for a
    second; the flush then walked them cache-cold) and a flush is a few memcpys, not a conversion of
    Python objects (bench/recorder_overhead.py).
    """

    _NUMERIC = (("ts", "d", pa.float64()), ("rt", "d", pa.float64()), ("length", "q", pa.int64()),
                ("code", "i", pa.int32()), ("users", "i", pa.int32()), ("key", "i", pa.int32()),
                ("exc", "i", pa.int32()), ("user", "i", pa.int32()), ("intended", "d", pa.float64()),
                ("omitted", "i", pa.int32()), ("period", "d", pa.float64()), ("req", "i", pa.int32()))

    def __init__(self, redact_name) -> None:
        for attr, typecode, _type in self._NUMERIC:
            setattr(self, attr, array(typecode))
        self.redact_name = redact_name
        self.keys: dict[str, dict[str, int]] = {}  # request_type -> name -> key code
        self.key_types: list[str] = []
        self.key_names: list[str] = []  # redacted
        self.exc_codes: dict[str, int] = {}   # exception text -> code (0: no exception)
        self.exc_texts: list[str | None] = [None]

    def __len__(self) -> int:
        return len(self.req)  # the last column a row is appended to

    def new_key(self, request_type, name) -> int:
        request_type, name = str(request_type), str(name)
        names = self.keys.setdefault(request_type, {})
        code = names.get(name)
        if code is None:
            code = names[name] = len(self.key_names)
            self.key_types.append(request_type)
            self.key_names.append(self.redact_name(name))
        return code

    def exception_code(self, exception) -> int:
        try:
            text = repr(exception)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the sample
            text = f"<{type(exception).__name__} that cannot be shown>"
        code = self.exc_codes.get(text)
        if code is None:
            code = self.exc_codes[text] = len(self.exc_texts)
            self.exc_texts.append(redact(text))
        return code

    def listener(self, users, attributed: bool):
        """The ``request`` event listener; ``attributed``: look up the requirement of the running task."""
        keys, new_key, exception_code = self.keys, self.new_key, self.exception_code
        (ts, rt, length, code_, users_, key_, exc_, user_, intended_, omitted_, period_,
         req_) = (getattr(self, a).append for a, _t, _y in self._NUMERIC)
        current, slow, by_greenlet, state_of, counts = _current.get, self.append_checked, USERS.get, state_of_, COUNTS
        nan = math.nan

        def on_request(request_type, name, response_time, response_length, response=None, context=None,
                       exception=None, start_time=None, url=None, **_kw) -> None:
            try:
                key = keys[request_type][name]
            except (KeyError, TypeError):
                key = new_key(request_type, name)
            code = getattr(response, "status_code", 0)
            g = getcurrent()
            user = by_greenlet(g) or state_of(g)
            try:
                intended = nan if user.period is None else response_time + user.late_ms
                ts(start_time)
                rt(response_time)
                length(response_length or 0)
                code_(code or 0)
                users_(len(users))
                key_(key)
                exc_(0 if exception is None else exception_code(exception))
                user_(user.number)
                intended_(intended)
                period_(user.period_ms)
                if user.first:  # the first request of a paced iteration carries the slots skipped before it
                    omitted_(user.omitted)
                    late = start_time - user.wake > user.tolerance
                    user.first = False
                    counts[0] += 1
                    counts[1] += late
                else:
                    omitted_(-1)
                req_(current(g, 0) if attributed else 0)
            except (TypeError, OverflowError):  # an odd value from a custom client: the careful path
                slow(start_time, response_time, response_length, code, len(users), key,
                     0 if exception is None else exception_code(exception),
                     current(g, 0) if attributed else 0, user)

        return on_request

    def append_checked(self, start_time, response_time, response_length, code, users, key, exc, req,
                       user: UserState = NOBODY) -> None:
        """Append one row whatever the types (None or junk become NaN / 0), after undoing a partial one."""
        n = len(self)
        for attr, _t, _y in self._NUMERIC:
            del getattr(self, attr)[n:]
        self.rt.append(_as_float(response_time))
        self.ts.append(_as_float(start_time, None))
        if self.ts[-1] != self.ts[-1]:  # no start time given: when it ended, minus its duration
            self.ts[-1] = time.time() - (0.0 if self.rt[-1] != self.rt[-1] else self.rt[-1] / 1000.0)
        self.length.append(_as_int(response_length, 2**63))
        self.code.append(_as_int(code, 2**31))
        self.users.append(users)
        self.key.append(key)
        self.exc.append(exc)
        self.user.append(user.number)
        self.intended.append(math.nan if user.period is None else self.rt[-1] + user.late_ms)
        self.period.append(user.period_ms)
        self.omitted.append(user.omitted if user.first else -1)
        if user.first:
            user.first = False
            COUNTS[0] += 1
            COUNTS[1] += self.ts[-1] - user.wake > user.tolerance
        self.req.append(req)

    def take(self) -> tuple | None:
        """The rows so far, copied out of the buffers (which start again empty); None if there are none.

        Cheap (a memcpy per column): it runs on the load generator's loop. :func:`build_batch` makes
        the record batch from it, anywhere.
        """
        n = len(self)
        if not n:
            return None
        data = {}
        for attr, _typecode, _type in self._NUMERIC:
            col = getattr(self, attr)
            data[attr] = col.tobytes()
            del col[:]
        raw = (n, data, list(self.key_types), list(self.key_names), list(self.exc_texts), list(REQ_TEXTS))
        # Bounded: request names or exception texts with ids in them must not grow the code tables.
        if len(self.key_names) > _EXCEPTION_CACHE_MAX:
            for names in self.keys.values():
                names.clear()
            del self.key_types[:], self.key_names[:]
        if len(self.exc_texts) > _EXCEPTION_CACHE_MAX:
            self.exc_codes.clear()
            del self.exc_texts[1:]
        return raw


def build_batch(raw: tuple, worker: str, all_reqs: str) -> pa.RecordBatch:
    """A record batch of :data:`SCHEMA` from :meth:`Columns.take`'s copy. Touches no shared state, and
    Arrow's kernels release the GIL: the recorder runs it on a native thread, beside the users."""
    n, data, key_types, key_names, exc_texts, req_texts = raw
    cols = {attr: pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(data[attr])])
            for attr, _typecode, arrow_type in Columns._NUMERIC}
    rt, intended, period = (_nan_to_null(cols[c], n) for c in ("rt", "intended", "period"))
    key, exc = cols["key"], cols["exc"]
    zeros = int32_array(bytes(4 * n))
    user, omitted = (_negative_to_null(cols[c], zeros) for c in ("user", "omitted"))
    # (No Python scalars in Arrow calls: converting one imports pandas into the load generator.)
    return pa.RecordBatch.from_arrays([
        cols["ts"], string_array(key_types).take(key), string_array(key_names).take(key), rt, cols["length"], cols["code"],
        pc.equal(exc, zeros), string_array(exc_texts).take(exc), string_array([all_reqs, *req_texts]).take(cols["req"]),
        string_array([worker]).take(zeros), cols["users"], user, intended, omitted, period,
    ], schema=SCHEMA)


def _nan_to_null(column: pa.Array, n: int) -> pa.Array:
    """NaN marks a value that is not there (no response time; an unpaced user): null in the samples."""
    if pc.any(pc.is_nan(column)).as_py():
        return pc.if_else(pc.is_nan(column), pa.nulls(n, pa.float64()), column)
    return column


def _negative_to_null(column: pa.Array, zeros: pa.Array) -> pa.Array:
    """-1 marks a value that is not there (not a user's request; not an iteration's first): null."""
    negative = pc.less(column, zeros)
    if pc.any(negative).as_py():
        return pc.if_else(negative, pa.nulls(len(column), pa.int32()), column)
    return column


def _as_float(value, default: float = float("nan")) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default if default is not None else float("nan")


def _as_int(value, bound: int) -> int:
    """``value`` as an int within ±``bound``; 0 for anything else."""
    try:
        v = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0
    return v if -bound <= v < bound else 0

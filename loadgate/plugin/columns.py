"""The recorder's hot path: each request becomes one packed binary row (its strings as codes) in a
``bytearray``; a flush copies the bytes out and :func:`build_batch` makes the Arrow record batch of them,
column by column, on any thread.
"""

from __future__ import annotations

import math
import os
import struct
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from greenlet import getcurrent

from loadgate.data.arrowbuf import string_array
from loadgate.data.samples import STREAM_SCHEMA
from loadgate.plugin.attribution import REQ_TEXTS
from loadgate.plugin.compat import user_greenlet_set
from loadgate.plugin.attribution import current as _current
from loadgate.pacing import COUNTS, NOBODY, USERS, UserState
from loadgate.pacing import state_of as state_of_
from loadgate.shared.redact import redact

try:  # the same listener in C, where setup.py could build it (optional): no Python frame per request
    from loadgate.plugin._rowpack import Listener as NativeListener
except ImportError:  # pragma: no cover - a build without a C compiler
    NativeListener = None
# LOADGATE_PURE_PYTHON=1: use the Python listener even where the C one is built (to compare, or to debug)
NATIVE = NativeListener is not None and not os.environ.get("LOADGATE_PURE_PYTHON")

_EXCEPTION_CACHE_MAX = 20_000  # distinct names / exception texts remembered (redacted once each)
_ARROW = {"d": pa.float64(), "q": pa.int64(), "i": pa.int32()}
_NUMPY = {"d": "<f8", "q": "<i8", "i": "<i4"}


class UserCount:
    """``len()`` is the runner's user count. For local and worker runners that is the size of the set of
    user greenlets (what ``Runner.user_count`` computes, minus two Python calls); else the property."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def __len__(self) -> int:
        return self.runner.user_count

    @classmethod
    def of(cls, runner):
        greenlets = user_greenlet_set(runner)
        return greenlets if greenlets is not None else cls(runner)


class Columns:
    """The samples of one flush interval, a packed row per request, in the order they were recorded.

    The hot path is one ``struct.pack`` and one ``bytearray.extend`` per request: it keeps no Python
    object alive (a tuple per request kept ~4 objects alive for a second; the flush then walked them
    cache-cold), and a row is appended whole or not at all. In a real run, where Locust's own code
    between two requests leaves the listener's cold, nine ``array.append`` calls cost ~2.3 µs a request
    and a pack ~1.2 µs (bench/recorder_overhead.py measures what that is of the generator's throughput).

    A run without paced users packs only :data:`FIELDS`; its schedule columns are all null, filled
    per batch. Rows of both layouts can share a flush interval (a web-UI session's next test may add
    paced users): each layout's rows are kept as their own chunk, in order.

    The row's one spec is :data:`FIELDS` and :data:`SCHEDULE`, (column, typecode) in row order: the struct
    that packs a row, the numpy dtype that reads the rows back, the careful path's row and the C listener's
    offsets (handed over at init: :data:`SPECS`) all come from it. The Python listeners' ``pack`` calls
    name the values in that order; ``tests/test_rowpack.py`` checks each listener puts each column where
    the spec says.
    """

    FIELDS = (
        ("ts", "d"),
        ("rt", "d"),
        ("length", "q"),
        ("code", "i"),
        ("users", "i"),
        ("key", "i"),
        ("exc", "i"),
        ("user", "i"),
        ("req", "i"),
    )
    SCHEDULE = (("intended", "d"), ("omitted", "i"), ("period", "d"))  # packed after FIELDS when paced
    SPECS = {False: FIELDS, True: FIELDS + SCHEDULE}  # the row of an unpaced / a paced listener
    LAYOUTS = {
        schedule: (struct.Struct("<" + "".join(t for _a, t in fields)), np.dtype([(a, _NUMPY[t]) for a, t in fields]))
        for schedule, fields in SPECS.items()
    }

    def __init__(self, redact_name) -> None:
        self.rows = bytearray()  # the packed rows of the running layout
        self.chunks: list[tuple[bool, bytes]] = []  # rows of a layout used before, this interval
        self.schedule = True  # the running layout: with the schedule columns (False: a run with no paced user)
        self.redact_name = redact_name
        self.keys: dict[str, dict[str, int]] = {}  # request_type -> name -> key code
        self.key_types: list[str] = []
        self.key_names: list[str] = []  # redacted
        self.exc_codes: dict[str, int] = {}  # exception text -> code (0: no exception)
        self.exc_texts: list[str | None] = [None]

    def __len__(self) -> int:
        return len(self.rows) // self.LAYOUTS[self.schedule][0].size + sum(
            len(b) // self.LAYOUTS[s][0].size for s, b in self.chunks
        )

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

    def with_schedule(self, on: bool) -> None:
        """Pack rows with the schedule columns (``on``) or without; the rows so far keep their layout."""
        if on != self.schedule and self.rows:
            self.chunks.append((self.schedule, bytes(self.rows)))
            del self.rows[:]
        self.schedule = on

    def listener(self, users, attributed: bool, paced: bool = True, native: bool | None = None):
        """The ``request`` event listener; ``attributed``: look up the requirement of the running task;
        ``paced``: some users follow a schedule (else the schedule columns are not packed per request);
        ``native``: the C listener (default: :data:`NATIVE`), which packs the same row as the Python one
        and hands it anything unusual."""
        python = self._python_listener(users, attributed, paced)
        if not (NATIVE if native is None else native):
            return python
        return NativeListener(
            rows=self.rows,
            keys=self.keys,
            new_key=self.new_key,
            exception_code=self.exception_code,
            users=users,
            getcurrent=getcurrent,
            by_greenlet=USERS,
            state_of=state_of_,
            current=_current if attributed else None,
            slow=self.append_checked,
            counts=COUNTS,
            fallback=python,
            paced=paced,
            layout=self.SPECS[paced],
        )

    def _python_listener(self, users, attributed: bool, paced: bool):
        self.with_schedule(paced)
        keys, new_key, exception_code = self.keys, self.new_key, self.exception_code
        pack, extend = self.LAYOUTS[paced][0].pack, self.rows.extend
        current, slow, by_greenlet, state_of, counts = _current.get, self.append_checked, USERS.get, state_of_, COUNTS
        bad, nan = (struct.error, TypeError, OverflowError), math.nan

        def on_request(
            request_type,
            name,
            response_time,
            response_length,
            response=None,
            context=None,
            exception=None,
            start_time=None,
            url=None,
            **_kw,
        ) -> None:
            try:
                key = keys[request_type][name]
            except (KeyError, TypeError):
                key = new_key(request_type, name)
            code = getattr(response, "status_code", 0)
            g = getcurrent()
            user = by_greenlet(g) or state_of(g)
            exc = 0 if exception is None else exception_code(exception)
            req = current(g, 0) if attributed else 0
            try:  # FIELDS' order: ts, rt, length, code, users, key, exc, user, req
                extend(
                    pack(
                        start_time,
                        response_time,
                        response_length or 0,
                        code or 0,
                        len(users),
                        key,
                        exc,
                        user.number,
                        req,
                    )
                )
            except bad:  # an odd value from a custom client: the careful path
                slow(start_time, response_time, response_length, code, len(users), key, exc, req, user)

        def on_paced_request(
            request_type,
            name,
            response_time,
            response_length,
            response=None,
            context=None,
            exception=None,
            start_time=None,
            url=None,
            **_kw,
        ) -> None:
            try:
                key = keys[request_type][name]
            except (KeyError, TypeError):
                key = new_key(request_type, name)
            code = getattr(response, "status_code", 0)
            g = getcurrent()
            user = by_greenlet(g) or state_of(g)
            exc = 0 if exception is None else exception_code(exception)
            req = current(g, 0) if attributed else 0
            first = user.first  # the first request of a paced iteration carries the slots skipped before it
            try:  # FIELDS', then SCHEDULE's order: intended, omitted, period
                extend(
                    pack(
                        start_time,
                        response_time,
                        response_length or 0,
                        code or 0,
                        len(users),
                        key,
                        exc,
                        user.number,
                        req,
                        nan if user.period is None else response_time + user.late_ms,
                        user.omitted if first else -1,
                        user.period_ms,
                    )
                )
            except bad:
                slow(start_time, response_time, response_length, code, len(users), key, exc, req, user)
                return
            if first:
                user.first = False
                counts[0] += 1
                counts[1] += start_time - user.wake > user.tolerance

        return on_paced_request if paced else on_request

    def append_checked(
        self, start_time, response_time, response_length, code, users, key, exc, req, user: UserState = NOBODY
    ) -> None:
        """Append one row whatever the types (None or junk become NaN / 0)."""
        rt = _as_float(response_time)
        ts = _as_float(start_time, None)
        if ts != ts:  # no start time given: when it ended, minus its duration
            ts = time.time() - (0.0 if rt != rt else rt / 1000.0)
        values = {
            "ts": ts,
            "rt": rt,
            "length": _as_int(response_length, 2**63),
            "code": _as_int(code, 2**31),
            "users": users,
            "key": key,
            "exc": exc,
            "user": user.number,
            "req": req,
        }
        if self.schedule:
            values.update(
                intended=math.nan if user.period is None else rt + user.late_ms,
                omitted=user.omitted if user.first else -1,
                period=user.period_ms,
            )
            if user.first:
                user.first = False
                COUNTS[0] += 1
                COUNTS[1] += ts - user.wake > user.tolerance
        self.rows.extend(self.LAYOUTS[self.schedule][0].pack(*[values[a] for a, _t in self.SPECS[self.schedule]]))

    def take(self) -> tuple | None:
        """The rows so far, copied out of the buffer (which starts again empty); None if there are none.

        Cheap (a memcpy): it runs on the load generator's loop. :func:`build_batch` makes the record
        batch from it, anywhere.
        """
        n = len(self)
        if not n:
            return None
        chunks = [*self.chunks, (self.schedule, bytes(self.rows))]
        self.chunks = []
        del self.rows[:]
        raw = (n, chunks, list(self.key_types), list(self.key_names), list(self.exc_texts), list(REQ_TEXTS))
        # Bounded: request names or exception texts with ids in them must not grow the code tables.
        if len(self.key_names) > _EXCEPTION_CACHE_MAX:
            for names in self.keys.values():
                names.clear()
            del self.key_types[:], self.key_names[:]
        if len(self.exc_texts) > _EXCEPTION_CACHE_MAX:
            self.exc_codes.clear()
            del self.exc_texts[1:]
        return raw


def _unpack(chunks: list[tuple[bool, bytes]]) -> dict[str, np.ndarray | None]:
    """Each column of the packed rows, contiguous. The schedule columns of unpaced rows are NaN / -1 (null
    once :func:`build_batch` is done); None when no row of the flush has them (the usual unpaced run)."""
    parsed = [(schedule, np.frombuffer(data, Columns.LAYOUTS[schedule][1])) for schedule, data in chunks]
    paced = any(schedule for schedule, _rows in parsed)
    out: dict[str, np.ndarray | None] = {}
    for attr, typecode in Columns.FIELDS + Columns.SCHEDULE:
        if not paced and attr not in Columns.LAYOUTS[False][1].names:
            out[attr] = None
            continue
        parts = [
            rows[attr]
            if attr in rows.dtype.names
            else np.full(len(rows), -1 if typecode == "i" else np.nan, _NUMPY[typecode])
            for _s, rows in parsed
        ]
        out[attr] = np.ascontiguousarray(parts[0]) if len(parts) == 1 else np.concatenate(parts)
    return out


def build_batch(raw: tuple, worker: str, all_reqs: str) -> pa.RecordBatch:
    """A record batch of :data:`STREAM_SCHEMA` from :meth:`Columns.take`'s copy. Touches no shared state
    but the last code tables' Arrow arrays (kept: they rarely change, and the stream writer then sees
    the same dictionary object and writes it once).

    It runs on the generator's loop each flush: numpy and Arrow buffers only, a few calls per column
    (a ``pyarrow.compute`` call costs ~10 µs however few the rows)."""
    n, chunks, key_types, key_names, exc_texts, req_texts = raw
    cols = _unpack(chunks)
    key, exc = _arrow(cols["key"], "i"), cols["exc"]
    failed = exc != 0
    zeros = np.zeros(n, np.int32)
    # The string columns are the code tables, each row its code; exception code 0 is no exception: a null
    # row (and "" in the table: Arrow cannot unify dictionaries that hold a null, as sorting a stream's
    # batches together needs). (No Python scalars in Arrow calls: converting one imports pandas here.)
    return pa.RecordBatch.from_arrays(
        [
            _arrow(cols["ts"], "d"),
            _coded(0, key, key_types),
            _coded(1, key, key_names),
            _arrow(cols["rt"], "d", np.isnan),
            _arrow(cols["length"], "q"),
            _arrow(cols["code"], "i"),
            pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(np.packbits(~failed, bitorder="little"))]),
            _coded(2, _arrow(exc, "i", np.logical_not, failed), ["", *exc_texts[1:]]),
            _coded(3, _arrow(cols["req"], "i"), [all_reqs, *req_texts]),
            _coded(4, _arrow(zeros, "i"), [worker]),
            _arrow(cols["users"], "i"),
            _arrow(cols["user"], "i", _negative),
            *(
                pa.nulls(n, _ARROW[t]) if cols[a] is None else _arrow(cols[a], t, np.isnan if t == "d" else _negative)
                for a, t in Columns.SCHEDULE
            ),
        ],
        schema=STREAM_SCHEMA,
    )


def _negative(values: np.ndarray) -> np.ndarray:
    return values < 0


def _arrow(values: np.ndarray, typecode: str, missing=None, flags: np.ndarray | None = None) -> pa.Array:
    """A contiguous numpy column as an Arrow array over its buffer; null where ``missing(values)`` (NaN
    marks a value that is not there: no response time, an unpaced user; -1: not a user's request, not an
    iteration's first), computed as ``flags`` if given."""
    validity = None
    if missing is not None:
        absent = missing(values if flags is None else flags)
        if absent.any():
            validity = pa.py_buffer(np.packbits(~absent, bitorder="little"))
    return pa.Array.from_buffers(_ARROW[typecode], len(values), [validity, pa.py_buffer(values)])


_TABLES: dict[int, tuple[list, pa.Array]] = {}  # column slot -> (the code table last built, its array)


def _coded(slot: int, codes: pa.Array, texts: list[str | None]) -> pa.DictionaryArray:
    """``texts[code]`` for each code, dictionary-encoded (a code outside ``texts`` raises)."""
    last = _TABLES.get(slot)
    if last is None or last[0] != texts:
        last = _TABLES[slot] = (texts, string_array(texts))
    return pa.DictionaryArray.from_arrays(codes, last[1], safe=True)


def stream_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as :data:`STREAM_SCHEMA` has it (a worker of an older loadgate sends plain strings)."""
    if batch.schema.equals(STREAM_SCHEMA):
        return batch
    return pa.RecordBatch.from_arrays(
        [pc.cast(batch.column(i), f.type) for i, f in enumerate(STREAM_SCHEMA)], schema=STREAM_SCHEMA
    )


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

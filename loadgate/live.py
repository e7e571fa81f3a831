"""Live view of a running test: sliding-window metrics for the progress line and abort-on-fail.

Runs inside the process that writes samples (local Locust or the master), fed with the recorder's
record batches; pure numpy/pyarrow. Values are exact over the window (numpy linear percentiles),
but the window is the last N seconds, not the analysis window: only the gate decides the verdict.
"""
from __future__ import annotations

import collections
import json
import operator
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROGRESS_WINDOW_S = 10.0
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Rule:
    """One threshold's alert, as the live monitor needs it (JSON-serialisable for the child)."""

    requirement: str
    metric: str
    request: str | None
    op: str
    value: float
    text: str
    abort_on_fail: bool = False
    abort_after: float = 0.0
    window: float = 10.0
    min_requests: int = 1

    @property
    def label(self) -> str:
        return f"{self.requirement} {self.metric}{' [' + self.request + ']' if self.request else ''} {self.text}"


def rules_from_thresholds(files) -> list[dict]:
    """Rules (as dicts) for every threshold with an alert level, from parsed threshold files."""
    out = []
    for tf in files:
        for t in tf.thresholds:
            if t.alert is None:
                continue
            out.append(Rule(t.requirement, t.metric, t.request, t.alert.op, t.alert.value, t.alert.text,
                            t.abort_on_fail, t.abort_after, t.abort_window, t.min_requests).__dict__)
    return out


def shown_value(metric: str, value: float) -> str:
    """A metric's value as the progress line and the abort reason show it."""
    if metric == "error_rate":
        return f"{value * 100:.2f}%"
    return f"{value:.1f}/s" if metric == "throughput" else f"{value:.1f} ms"


def metric_value(metric: str, rt: np.ndarray, ok: np.ndarray, seconds: float) -> float | None:
    """The metric over one window's samples (ms, fraction or req/s); None without samples."""
    if rt.size == 0:
        return 0.0 if metric == "throughput" else None
    if metric == "error_rate":
        return float(1.0 - ok.mean())
    if metric == "throughput":
        return rt.size / seconds
    if metric == "mean":
        return float(rt.mean())
    if metric == "min":
        return float(rt.min())
    if metric == "max":
        return float(rt.max())
    return float(np.percentile(rt, float(metric[1:])))


class LiveMonitor:
    """Keeps the last few seconds of samples and evaluates rules over a sliding window.

    Each batch is reduced once, when it arrives, to what the rules need: timestamps, response times,
    success, and one in-scope mask per rule. The per-second evaluation then only concatenates the
    recent batches' arrays: it runs on the load generator's own loop, which has no time to spare.
    """

    def __init__(self, rules: Iterable[dict]) -> None:
        self.rules = [Rule(**r) for r in rules]
        self.horizon = max([PROGRESS_WINDOW_S, *(r.window for r in self.rules)])
        self.batches: collections.deque[_Slice] = collections.deque()

    @classmethod
    def from_file(cls, path: str | None) -> "LiveMonitor":
        if not path:
            return cls([])
        with open(path) as f:
            return cls(json.load(f))

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            ts = _np(batch.column("timestamp"), np.nan)
            self.batches.append(_Slice(float(np.nanmax(ts)) if not np.isnan(ts).all() else -np.inf, ts,
                                       _np(batch.column("response_time_ms"), np.nan),
                                       _np(batch.column("success"), False),
                                       [_scope_mask(batch, rule) for rule in self.rules]))

    def _recent(self, now: float, seconds: float, rule: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(response times, success) of the samples since ``now - seconds``, in ``rule``'s scope if given."""
        while self.batches and self.batches[0].last < now - self.horizon:
            self.batches.popleft()
        parts = [b for b in self.batches if b.last >= now - seconds]
        if not parts:
            return None
        ts = np.concatenate([b.ts for b in parts])
        keep = ts >= now - seconds
        if rule is not None:
            keep &= np.concatenate([b.masks[rule] for b in parts])
        return np.concatenate([b.rt for b in parts])[keep], np.concatenate([b.ok for b in parts])[keep]

    def evaluate(self, now: float, *, started: float, ramped: bool) -> tuple[dict, str | None]:
        """(progress snapshot, abort reason or None) at time ``now``."""
        snap: dict = {"t": now, "crossed": []}
        # Windows end at the newest sample that has arrived, not at the clock: requests of the last
        # second are still in flight or in the buffer, and counting from "now" would undercount
        # throughput by about one flush interval's worth (and could trip a throughput abort).
        if self.batches:
            now = min(now, max(b.last for b in self.batches))
        recent = self._recent(now, PROGRESS_WINDOW_S)
        span = min(PROGRESS_WINDOW_S, max(now - started, 1e-9))
        if recent is not None and recent[0].size:
            rt, ok = recent
            snap.update(rps=rt.size / span, p95_ms=float(np.percentile(rt, 95)), error_rate=float(1 - ok.mean()))
        else:
            snap.update(rps=0.0, p95_ms=None, error_rate=None)
        abort = None
        for i, rule in enumerate(self.rules):
            win = self._recent(now, rule.window, i)
            if win is None:
                continue
            rt, ok = win
            if rt.size < rule.min_requests:
                continue
            value = metric_value(rule.metric, rt, ok, min(rule.window, max(now - started, 1e-9)))
            if value is None or not _OPS[rule.op](value, rule.value):
                continue
            shown = shown_value(rule.metric, value)
            snap["crossed"].append(f"{rule.label} ({shown})")
            full_window = now - started >= rule.window
            if (rule.abort_on_fail and abort is None and now - started >= rule.abort_after and full_window
                    and (ramped or rule.metric != "throughput")):
                abort = (f"aborted after {now - started:.0f}s: {rule.label} held over the last "
                         f"{rule.window:g}s ({shown})")
        return snap, abort


@dataclass(frozen=True)
class _Slice:
    """One batch as the rules see it."""

    last: float  # its latest timestamp
    ts: np.ndarray
    rt: np.ndarray  # NaN where unknown
    ok: np.ndarray  # False where unknown
    masks: list[np.ndarray]  # per rule: rows in its scope


def _scope_mask(batch: pa.RecordBatch, rule: Rule) -> np.ndarray:
    """Rows of ``batch`` in the rule's scope: its requirement, and its request if it names one."""
    mask = pc.match_substring_regex(batch.column("requirement"), f"(^|,){rule.requirement}(,|$)")
    if rule.request:
        key = pc.binary_join_element_wise(batch.column("request_type"), batch.column("name"), " ")
        mask = pc.and_(mask, pc.or_(pc.equal(key, rule.request), pc.equal(batch.column("name"), rule.request)))
    return _np(mask, False)


_NUMPY_TYPES = {pa.float64(): np.float64, pa.int64(): np.int64, pa.int32(): np.int32}


def _np(column: pa.Array, fill: object) -> np.ndarray:
    """A numpy view (a copy for booleans) of a primitive Arrow array, nulls replaced by ``fill``.

    From the buffers: Arrow's own ``to_numpy`` imports pandas, a stall of the load generator's loop.
    """
    if column.null_count:
        column = column.fill_null(fill)
    if pa.types.is_boolean(column.type):
        return _np(pc.cast(column, pa.uint8()), 0).view(np.bool_)
    dtype = _NUMPY_TYPES.get(column.type)
    if dtype is None:
        return column.to_numpy(zero_copy_only=False)
    return np.frombuffer(column.buffers()[1], dtype, len(column), column.offset * np.dtype(dtype).itemsize)

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

from loadgate.data.arrowbuf import numpy_of
from loadgate.gate.conditions import CAPACITY_METRICS

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
            if t.alert is None or t.resource is not None or t.metric in CAPACITY_METRICS:  # resources: not in the samples; capacity: known only once a search ends
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
    if np.isnan(rt.min()):  # requests without a response time count above, not in latencies (as in the gate)
        rt = rt[~np.isnan(rt)]
        if rt.size == 0:
            return None
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
        self.omitted = 0  # schedule slots paced users skipped so far (the progress line shows it)
        self.aborts = any(r.abort_on_fail for r in self.rules)  # some rule stops the run: evaluate each second

    @classmethod
    def from_file(cls, path: str | None) -> LiveMonitor:
        if not path:
            return cls([])
        with open(path) as f:
            return cls(json.load(f))

    def add(self, batch: pa.RecordBatch) -> None:
        self.append(self.scan(batch))

    def append(self, piece: _Slice) -> None:
        """Keep a batch :meth:`scan` reduced (scanning is thread-safe; this is not)."""
        self.omitted += piece.omitted
        if piece.ts.size:
            self.batches.append(piece)

    def scan(self, batch: pa.RecordBatch) -> _Slice:
        """``batch`` reduced to what the rules need."""
        ts = numpy_of(batch.column("timestamp"), np.nan)
        known = ts.size and not np.isnan(ts).all()
        return _Slice(float(np.nanmax(ts)) if known else -np.inf, ts,
                      numpy_of(batch.column("response_time_ms"), np.nan), numpy_of(batch.column("success"), False),
                      _scope_masks(batch, self.rules),
                      float(np.nanmin(ts)) if known and not np.isnan(ts).any() else -np.inf,
                      _omitted(batch))

    @staticmethod
    def _recent(pieces, now: float, seconds: float, rule: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(response times, success) of the samples since ``now - seconds``, in ``rule``'s scope if given."""
        start = now - seconds
        parts = [b for b in pieces if b.last >= start]
        if not parts:
            return None
        rts, oks = [], []
        for b in parts:  # only a batch that straddles the window's start (or has a rule mask) is filtered
            keep = None if b.first >= start else b.ts >= start
            mask = None if rule is None else b.masks[rule]
            if mask is not None:
                keep = mask if keep is None else keep & mask
            rts.append(b.rt if keep is None else b.rt[keep])
            oks.append(b.ok if keep is None else b.ok[keep])
        return np.concatenate(rts), np.concatenate(oks)

    def evaluate(self, now: float, *, started: float, ramped: bool, offload=None) -> tuple[dict, str | None]:
        """(progress snapshot, abort reason or None) at time ``now``.

        ``offload(fn, *args)``, if given, runs the numpy part (the recorder's: a native thread at high rates);
        it works on a snapshot of the batches, so :meth:`append` may go on meanwhile.
        """
        t = now
        # Windows end at the newest sample that has arrived, not at the clock: requests of the last
        # second are still in flight or in the buffer, and counting from "now" would undercount
        # throughput by about one flush interval's worth (and could trip a throughput abort).
        if self.batches:
            now = min(now, max(b.last for b in self.batches))
        while self.batches and self.batches[0].last < now - self.horizon:
            self.batches.popleft()
        pieces = tuple(self.batches)
        return (offload or _call)(self._evaluate, pieces, t, now, started, ramped)

    def _evaluate(self, pieces, t: float, now: float, started: float, ramped: bool) -> tuple[dict, str | None]:
        snap: dict = {"t": t, "crossed": []}
        # Rules whose scope is every sample of the window (one requirement per run, no request filter:
        # the usual case) share the window's arrays and values with the progress line: each window is
        # concatenated and each metric computed once per evaluation.
        windows: dict = {}
        values: dict = {}

        def window(seconds: float, rule: int | None):
            if rule is not None and all(b.masks[rule] is None for b in pieces if b.last >= now - seconds):
                rule = None
            key = (seconds, rule)
            if key not in windows:
                windows[key] = self._recent(pieces, now, seconds, rule)
            return key, windows[key]

        def value(key, win, metric: str, seconds: float):
            if (key, metric) not in values:
                values[key, metric] = metric_value(metric, *win, seconds)
            return values[key, metric]

        span = min(PROGRESS_WINDOW_S, max(now - started, 1e-9))
        key, recent = window(PROGRESS_WINDOW_S, None)
        if recent is not None and recent[0].size:
            snap.update(rps=recent[0].size / span, p95_ms=value(key, recent, "p95", span),
                        error_rate=value(key, recent, "error_rate", span))
        else:
            snap.update(rps=0.0, p95_ms=None, error_rate=None)
        abort = None
        for i, rule in enumerate(self.rules):
            key, win = window(rule.window, i)
            if win is None:
                continue
            if win[0].size < rule.min_requests:
                continue
            v = value(key, win, rule.metric, min(rule.window, max(now - started, 1e-9)))
            if v is None or not _OPS[rule.op](v, rule.value):
                continue
            shown = shown_value(rule.metric, v)
            snap["crossed"].append(f"{rule.label} ({shown})")
            full_window = now - started >= rule.window
            if (rule.abort_on_fail and abort is None and now - started >= rule.abort_after and full_window
                    and (ramped or rule.metric != "throughput")):
                abort = (f"aborted after {now - started:.0f}s: {rule.label} held over the last "
                         f"{rule.window:g}s ({shown})")
        return snap, abort


def _call(fn, *args):
    return fn(*args)


@dataclass(frozen=True)
class _Slice:
    """One batch as the rules see it."""

    last: float  # its latest timestamp
    ts: np.ndarray
    rt: np.ndarray  # NaN where unknown
    ok: np.ndarray  # False where unknown
    masks: list[np.ndarray | None]  # per rule: rows in its scope (None: all)
    first: float = -np.inf  # its earliest timestamp (-inf if any is unknown)
    omitted: int = 0  # schedule slots skipped before the paced iterations that start in it


def _omitted(batch: pa.RecordBatch) -> int:
    """The sum of a batch's ``omitted`` column (0 without one: a samples/1 batch)."""
    if "omitted" not in batch.schema.names or batch.column("omitted").null_count == batch.num_rows:
        return 0
    return int(numpy_of(batch.column("omitted"), 0).sum())


def _scope_masks(batch: pa.RecordBatch, rules: list[Rule]) -> list[np.ndarray | None]:
    """Per rule, the rows of ``batch`` in its scope (its requirement, and its request if it names one);
    None: every row. A batch holds a handful of distinct requirement labels, matched once each."""
    if not rules:
        return []
    labels, codes = _coded(batch.column("requirement"))
    masks: list[np.ndarray | None] = []
    for rule in rules:
        hits = [i for i, label in enumerate(labels) if label is not None and rule.requirement in label.split(",")]
        if len(hits) == len(labels) and (codes >= 0).all():
            mask = None
        else:
            mask = np.isin(codes, hits)
        if rule.request:  # "TYPE NAME" or "NAME"
            names, types = _coded(batch.column("name")), _coded(batch.column("request_type"))
            named = _equal(names, rule.request)
            for kind in types[0]:
                if kind is not None and rule.request.startswith(kind + " "):
                    named |= _equal(types, kind) & _equal(names, rule.request[len(kind) + 1:])
            mask = named if mask is None else mask & named
        masks.append(mask)
    return masks


def _coded(column: pa.Array) -> tuple[list, np.ndarray]:
    """A string column as (its distinct values, each row's index among them; -1 for a null row). The
    recorder's batches are dictionary-encoded already; a plain string column is encoded here (comparing
    it with a Python string would import pandas into the load generator)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return column.dictionary.to_pylist(), numpy_of(column.indices, -1)


def _equal(coded: tuple[list, np.ndarray], value: str) -> np.ndarray:
    """Rows of a :func:`_coded` column equal to ``value``."""
    labels, codes = coded
    return np.isin(codes, [i for i, v in enumerate(labels) if v == value])

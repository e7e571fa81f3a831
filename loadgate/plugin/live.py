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

from loadgate.data.arrowbuf import numpy_of
from loadgate.plugin.live_scopes import Grouped, Scopes
from loadgate.shared.live_rules import RULES_PER_TICK, Rule

PROGRESS_WINDOW_S = 10.0
CROSSED_SHOWN = 10  # crossings the progress line names; more are counted ("and N more")
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


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
    success, and each row's key (its requirement label and request, matched to the rules' scopes once per
    distinct key: :mod:`loadgate.plugin.live_scopes`). An evaluation runs on the load generator's own loop,
    which has no time to spare: it groups the window's rows by key once, and evaluates at most
    ``RULES_PER_TICK`` rules of the scopes that have rows, those that can abort first, the others in turn
    over the following evaluations (a crossing stays shown until its rule is evaluated again).
    """

    def __init__(self, rules: Iterable[dict], rules_per_tick: int = RULES_PER_TICK) -> None:
        self.rules = [Rule(**r) for r in rules]
        self.scopes = Scopes(self.rules)
        self.rules_per_tick = rules_per_tick
        self.horizon = max([PROGRESS_WINDOW_S, *{r.window for r in self.rules}])
        self.batches: collections.deque[_Slice] = collections.deque()
        self.omitted = 0  # schedule slots paced users skipped so far (the progress line shows it)
        self.aborts = bool(self.scopes.aborting)  # some rule stops the run: evaluate each second
        self.crossed: dict[int, str] = {}  # rule index -> its crossing as last evaluated
        self._cursors = [0, 0]  # where the next evaluation goes on among the aborting / other scopes

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
        return _Slice(
            float(np.nanmax(ts)) if known else -np.inf,
            ts,
            numpy_of(batch.column("response_time_ms"), np.nan),
            numpy_of(batch.column("success"), False),
            self.scopes.row_keys(batch) if self.rules and batch.num_rows else None,
            float(np.nanmin(ts)) if known and not np.isnan(ts).any() else -np.inf,
            _omitted(batch),
        )

    @staticmethod
    def _recent(pieces, now: float, seconds: float, keys: bool = False) -> tuple[np.ndarray, ...] | None:
        """(response times, success[, keys]) of the samples since ``now - seconds``."""
        start = now - seconds
        parts = [b for b in pieces if b.last >= start]
        if not parts:
            return None
        columns: list[list[np.ndarray]] = [[], [], []] if keys else [[], []]
        for b in parts:  # only a batch that straddles the window's start is filtered
            keep = None if b.first >= start else b.ts >= start
            for out, values in zip(columns, (b.rt, b.ok, b.keys)):
                out.append(values if keep is None else values[keep])
        return tuple(np.concatenate(c) for c in columns)

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
        span = min(PROGRESS_WINDOW_S, max(now - started, 1e-9))
        recent = self._recent(pieces, now, PROGRESS_WINDOW_S)
        if recent is not None and recent[0].size:
            snap.update(
                rps=recent[0].size / span,
                p95_ms=metric_value("p95", *recent, span),
                error_rate=metric_value("error_rate", *recent, span),
            )
        else:
            snap.update(rps=0.0, p95_ms=None, error_rate=None)
        if not self.rules:
            return snap, None
        windows: dict[float, tuple | None] = {}  # seconds -> (rt, ok, Grouped) of the window, or None
        values: dict[tuple, float | None] = {}  # (window, seconds, scope, metric) -> its value

        def window(seconds: float):
            if seconds not in windows:
                got = self._recent(pieces, now, seconds, keys=True)
                windows[seconds] = None if got is None else (got[0], got[1], Grouped(got[2], self.scopes))
            return windows[seconds]

        widest = window(self.horizon)
        present = sorted(widest[2].members) if widest is not None else []
        for i in [i for i in self.crossed if self.scopes.of_rule[i] not in (widest[2].members if widest else ())]:
            del self.crossed[i]  # no row of its scope is left: no crossing
        abort = None
        for scope in self._due(present):
            for i in self.scopes.rules[scope]:
                rule = self.rules[i]
                win = window(rule.window)
                rows = win[2].rows(scope) if win is not None else np.empty(0, np.int64)
                size = win[0].size if rows is None else rows.size
                if size < rule.min_requests:
                    self.crossed.pop(i, None)
                    continue
                seconds = min(rule.window, max(now - started, 1e-9))
                key = (rule.window, seconds, scope if rows is not None else None, rule.metric)
                if key not in values:
                    rt, ok = (win[0], win[1]) if rows is None else (win[0][rows], win[1][rows])
                    values[key] = metric_value(rule.metric, rt, ok, seconds)
                v = values[key]
                if v is None or not _OPS[rule.op](v, rule.value):
                    self.crossed.pop(i, None)
                    continue
                shown = shown_value(rule.metric, v)
                self.crossed[i] = f"{rule.label} ({shown})"
                if (
                    rule.abort_on_fail
                    and (abort is None or i < abort[0])
                    and now - started >= rule.abort_after
                    and now - started >= rule.window
                    and (ramped or rule.metric != "throughput")
                ):
                    abort = (
                        i,
                        f"aborted after {now - started:.0f}s: {rule.label} held over the last "
                        f"{rule.window:g}s ({shown})",
                    )
        crossed = [self.crossed[i] for i in sorted(self.crossed)]
        snap["crossed"] = (
            crossed
            if len(crossed) <= CROSSED_SHOWN
            else [*crossed[:CROSSED_SHOWN], f"and {len(crossed) - CROSSED_SHOWN} more"]
        )
        return snap, None if abort is None else abort[1]

    def _due(self, present: list[int]) -> list[int]:
        """The scopes to evaluate now: at most ``rules_per_tick`` rules' worth (at least one scope), the
        scopes that can abort first; each group taken in turn from where the last evaluation stopped."""
        due, room = [], self.rules_per_tick
        for g, group in enumerate(
            ([s for s in present if s in self.scopes.aborting], [s for s in present if s not in self.scopes.aborting])
        ):
            sizes = [len(self.scopes.rules[s]) for s in group]
            if sum(sizes) <= room:
                due += group
                room -= sum(sizes)
                continue
            start = self._cursors[g] % len(group)
            taken = 0
            for k in range(len(group)):
                s = group[(start + k) % len(group)]
                if room < len(self.scopes.rules[s]) and (due or taken):
                    break
                due.append(s)
                room -= len(self.scopes.rules[s])
                taken += 1
            self._cursors[g] = (start + taken) % len(group)
        return due


def _call(fn, *args):
    return fn(*args)


@dataclass(frozen=True)
class _Slice:
    """One batch as the rules see it."""

    last: float  # its latest timestamp
    ts: np.ndarray
    rt: np.ndarray  # NaN where unknown
    ok: np.ndarray  # False where unknown
    keys: np.ndarray | None  # per row: its key among the rules' scopes (live_scopes.Scopes); None without rules
    first: float = -np.inf  # its earliest timestamp (-inf if any is unknown)
    omitted: int = 0  # schedule slots skipped before the paced iterations that start in it


def _omitted(batch: pa.RecordBatch) -> int:
    """The sum of a batch's ``omitted`` column (0 without one: a samples/1 batch)."""
    if "omitted" not in batch.schema.names or batch.column("omitted").null_count == batch.num_rows:
        return 0
    return int(numpy_of(batch.column("omitted"), 0).sum())

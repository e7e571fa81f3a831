"""Two runs' samples for a comparison, read in bounded memory: per scope the counts, and only the order
statistics of its response times that the comparison reads (a soak run is compared with
another on the machine that ran it).

The bootstrap of a percentile reads order statistics at ranks drawn from Beta distributions, and those
ranks depend on the two runs' sample sizes, the percentile and the row's seed, never on the values
(:func:`loadgate.history.compare.wanted_ranks`). So each run is read twice, a row group at a time:

1. count each scope's requests, failures and response times, and the response times in a histogram per
   (request type, name, requirement label), between the smallest and largest the row groups' statistics
   give (a writer whose statistics do not hold costs one more pass, never a wrong value);
2. once the ranks are planned from both runs' counts, gather the rows in the histogram cells that hold a
   wanted rank, and pick each rank exactly (:class:`loadgate.analysis.ranks.RankSearch`, the streamed
   summary's search; a cell still too full is split in a further pass).

Memory: the histograms, and per scope the planned ranks (at most ~20,000 for each percentile compared,
wherever a percentile has enough samples for an interval); never a run's samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from loadgate.analysis.memory import memory_tuned
from loadgate.analysis.ranks import RankSearch, from_keys, to_keys
from loadgate.analysis.run_window import run_window
from loadgate.analysis.stream_rows import RowReader
from loadgate.analysis.window import Window
from loadgate.data import rundir
from loadgate.data.run_doc import read_run
from loadgate.data.row_groups import RowGroups
from loadgate.errors import ConfigError
from loadgate.history.compare import (
    METRICS,
    TOLERANCE_ERRORS,
    TOLERANCE_LATENCY,
    Group,
    Key,
    RunSamples,
    compare_loaded,
    scope_keys,
    wanted_ranks,
)

_COUNTED = ["timestamp", "request_type", "name", "requirement", "response_time_ms", "success", "users"]


def compare_runs(
    baseline_dir: str,
    candidate_dir: str,
    *,
    tolerance_latency: float = TOLERANCE_LATENCY,
    tolerance_errors: float = TOLERANCE_ERRORS,
) -> dict:
    """Compare two run directories: the ``loadgate.compare/1`` document."""
    base, cand = load_pair(baseline_dir, candidate_dir)
    if not base.groups.keys() & cand.groups.keys():
        raise ConfigError(
            f"{baseline_dir} and {candidate_dir} have no request or requirement in common "
            "in their analysis windows: nothing to compare; pick two runs of the same requirement"
        )
    return compare_loaded(base, cand, tolerance_latency=tolerance_latency, tolerance_errors=tolerance_errors)


def load_pair(baseline_dir: str, candidate_dir: str, metrics: Iterable[str] = ()) -> tuple[RunSamples, RunSamples]:
    """Both runs in their analysis windows, grouped by scope (:func:`loadgate.history.compare.scope_keys`),
    each scope holding the order statistics that comparing :data:`~loadgate.history.compare.METRICS` and
    ``metrics`` (percentiles a regression threshold names) reads."""
    asked = list(dict.fromkeys([*METRICS, *metrics]))
    with memory_tuned(), ThreadPoolExecutor(2) as pool:
        base, cand = (_Run(d, pool) for d in (baseline_dir, candidate_dir))
        wanted: tuple[dict[Key, np.ndarray], dict[Key, np.ndarray]] = ({}, {})
        for key in base.keys.keys() & cand.keys.keys():
            wanted[0][key], wanted[1][key] = wanted_ranks(base.latencies(key), cand.latencies(key), key, asked)
        return base.samples(wanted[0]), cand.samples(wanted[1])


class _Run(RowReader):
    """One run directory's samples in its analysis window: counted on creation, order statistics on demand."""

    def __init__(self, run_dir: str, pool: ThreadPoolExecutor) -> None:
        rundir.check_run_dir(run_dir)
        path = os.path.join(run_dir, rundir.SAMPLES)
        if not os.path.exists(path):
            raise ConfigError(f"{path}: missing; compare needs the raw samples of both runs")
        self.run_dir = run_dir
        groups = RowGroups(path)
        ts_ranges = groups.ranges("timestamp")
        if os.path.exists(os.path.join(run_dir, rundir.RUN)):
            window = run_window(read_run(run_dir))
        else:
            ends = [r for r in ts_ranges if r is not None]
            window = Window(min(r[0] for r in ends), max(r[1] for r in ends)) if ends else Window(0.0, -1.0)
        self.window = window
        self.order = [
            i for i, r in enumerate(ts_ranges) if r is not None and r[1] >= window.start and r[0] <= window.end
        ]
        try:
            self._count(groups, pool, read=False)
        except _StatisticsWrong:
            self._count(groups, pool, read=True)

    def _count(self, groups: RowGroups, pool: ThreadPoolExecutor, *, read: bool) -> None:
        """The first pass: per base group its requests, failures and response times, and the histogram of
        the times. ``read``: the times' range from the data, not from the row groups' statistics."""
        super().__init__(groups, pool, self.window)  # base groups numbered afresh
        used = set(self.order)
        ranges = [r for i, r in enumerate(groups.ranges("response_time_ms", read=read)) if i in used and r]
        self.search = None
        if ranges:
            lo, hi = (int(k) for k in to_keys(np.array([min(r[0] for r in ranges), max(r[1] for r in ranges)])))
            self.search = RankSearch(lo, hi)
        n = fails = nlat = np.zeros(0, np.int64)
        for _k, batch in self._batches(self.order, _COUNTED):
            rows = None if batch is None else self._rows(batch, True)
            if rows is None:
                continue
            size = len(self.combos)
            n, fails, nlat = (np.pad(a, (0, size - a.size)) for a in (n, fails, nlat))
            n += np.bincount(rows.base, minlength=size)
            fails += np.bincount(rows.base[rows.failed], minlength=size)
            has = ~np.isnan(rows.values)
            nlat += np.bincount(rows.base[has], minlength=size)
            if has.any():
                keys = to_keys(rows.values[has])
                if self.search is None or int(keys.min()) < lo or int(keys.max()) > hi:
                    raise _StatisticsWrong
                self.search.add(rows.base[has], keys, size)
        rt, nm, rq = (lab.labels for lab in self.labels)
        self.keys: dict[Key, list[int]] = {}  # scope -> its base groups
        for b, (r, m, q) in enumerate(self.combos):
            for key in scope_keys(rq[q], rt[r], nm[m]):
                self.keys.setdefault(key, []).append(b)
        self.counts = {
            key: (int(n[bs].sum()), int(fails[bs].sum()), int(nlat[bs].sum())) for key, bs in self.keys.items()
        }

    def latencies(self, key: Key) -> int:
        return self.counts[key][2]

    def samples(self, wanted: dict[Key, np.ndarray]) -> RunSamples:
        """Every scope with the order statistics at its ``wanted`` ranks (none for a scope not in it)."""
        values = self._gather(wanted)
        groups = {
            key: Group(values.get(key, np.zeros(0)), requests, failures, wanted.get(key, np.zeros(0, np.int64)), nlat)
            for key, (requests, failures, nlat) in self.counts.items()
        }
        return RunSamples(os.path.basename(os.path.normpath(self.run_dir)), self.run_dir, groups)

    def _gather(self, wanted: dict[Key, np.ndarray]) -> dict[Key, np.ndarray]:
        asked = [(key, ranks) for key, ranks in wanted.items() if ranks.size]
        if not asked or self.search is None:
            return {}
        outs = {key: o for o, (key, _ranks) in enumerate(asked)}
        pairs = [(outs[key], b) for key, _ranks in asked for b in self.keys[key]]
        po, pb = (np.array([p[i] for p in pairs], np.int64) for i in (0, 1))
        self.search.ask(
            po,
            pb,
            np.concatenate([np.full(r.size, outs[k], np.int64) for k, r in asked]),
            np.concatenate([r for _k, r in asked]),
        )
        self.refine(self.search, self.order)
        found = from_keys(self.search.keys)
        bounds = np.cumsum([0] + [r.size for _k, r in asked])
        return {key: found[bounds[i] : bounds[i + 1]] for i, (key, _r) in enumerate(asked)}


class _StatisticsWrong(Exception):
    """A row group holds a response time outside the range its statistics gave."""

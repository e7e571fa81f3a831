"""Compare a candidate run with a baseline run from their raw samples (``loadgate.compare/1``).

For p50, p95, p99 and the error rate of every request and every requirement found in both runs:
the change, a 95% confidence interval of the change, a two-sided p-value and a status.

- Percentiles: the change is relative (``cand / base - 1``). The interval is an exact percentile
  bootstrap of that ratio: resampling n values with replacement and taking numpy's ``linear``
  percentile only needs two order statistics of n uniforms, drawn directly from Beta distributions,
  so no resample is ever materialised or sorted (``_boot_percentile``). ``p_value`` is the two-sided
  bootstrap p of "no change" from the same replicates: p < 0.05 when the interval excludes 0.
- Error rate: the change is the difference of proportions (``0.01`` = one percentage point), with
  Newcombe's hybrid score interval and the pooled two-proportion z-test's p.
- Status: ``regression`` when the whole interval lies above the tolerance (significant *and* beyond
  it), ``improvement`` when it lies below minus the tolerance, ``unchanged`` otherwise -- including
  when fewer than MIN_TAIL samples lie beyond a percentile in either run (then ``ci`` and ``p_value``
  are null: a bootstrap of a percentile with two or three samples beyond it is too narrow).

Requiring the whole interval, not just the estimate, to clear the tolerance is what keeps a comparison
of a dozen rows quiet on an unchanged target: "interval excludes 0 and estimate beyond the tolerance"
flagged 5 of 20 pairs of real unchanged runs, this rule none (``bench/compare_false_alarms.py``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from loadgate.analysis.select import lerp, linear_plan

SCHEMA = "loadgate.compare/1"
METRICS = ("p50", "p95", "p99", "error_rate")
TOLERANCE_LATENCY = 0.10  # relative change of a percentile
TOLERANCE_ERRORS = 0.005  # absolute change of the error rate: half a percentage point
RESAMPLES = 10_000
MIN_TAIL = 5  # samples needed beyond a percentile (either side) for a CI: p95 100, p99 500
MIN_SAMPLES = 20
_Z = 1.959963984540054  # two-sided 95%
_SEED = 20_260_101  # fixed: the same two runs always give the same intervals

Key = tuple[str | None, str | None, str | None]  # (requirement, request_type, name); None type: requirement-wide


@dataclass(frozen=True)
class Change:
    """One metric compared: values, change (relative for percentiles, absolute for error rate), CI, p."""

    metric: str
    baseline: float | None
    candidate: float | None
    change: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    status: str


@dataclass(frozen=True)
class Group:
    """The samples of one scope in one run's window: response times (sorted, ms) and failures.

    ``times`` is every response time of the scope, sorted; or, read from a samples file in bounded memory
    (``ranks`` given), only the order statistics at those 0-based ranks (sorted, distinct) of its
    ``latencies`` response times: the ones the comparison reads.
    """

    times: np.ndarray
    requests: int
    failures: int
    ranks: np.ndarray | None = None
    latencies: int = 0

    @property
    def n(self) -> int:
        """Response times in the scope (requests without one are left out)."""
        return len(self.times) if self.ranks is None else self.latencies

    def at(self, ranks: np.ndarray) -> np.ndarray:
        """The order statistics at 0-based ``ranks``."""
        if self.ranks is None:
            return self.times[ranks]
        pos = np.minimum(np.searchsorted(self.ranks, ranks), max(len(self.ranks) - 1, 0))
        if not len(self.ranks) or not np.array_equal(self.ranks[pos], ranks):
            raise LookupError("an order statistic the comparison did not plan for was asked for")
        return self.times[pos]


def _group(x: Group | np.ndarray) -> Group:
    return x if isinstance(x, Group) else Group(np.asarray(x), len(x), 0)


@dataclass(frozen=True)
class RunSamples:
    """A run directory's samples in its analysis window, grouped per request and per requirement."""

    run_id: str
    run_dir: str
    groups: dict[Key, Group]


# --- statistics ------------------------------------------------------------------------------


def _boot_ranks(n: int, q: float, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The 0-based ranks :func:`_boot_percentile` reads for ``size`` replicates of percentile ``q`` of n
    values: (lower ranks, upper ranks or None, weight of the upper). They depend on n, q and the
    generator's state, never on the values: what lets the comparison plan them before reading a sample."""
    h = (n - 1) * q / 100.0
    lo = math.floor(h)
    g, j = h - lo, lo + 1  # j: 1-based rank of the lower order statistic used by "linear"
    u = rng.beta(j, n - j + 1, size)  # the j-th smallest of n uniforms
    first = np.minimum((u * n).astype(np.int64), n - 1)
    if g == 0 or j >= n:
        return first, None, g
    # given the j-th smallest of n uniforms is u, the (j+1)-th is u + (1-u) * min of n-j uniforms
    return first, np.minimum(((u + (1.0 - u) * rng.beta(1, n - j, size)) * n).astype(np.int64), n - 1), g


def _boot_percentile(x: Group | np.ndarray, q: float, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` bootstrap replicates of ``np.percentile(resample(x), q)`` for sorted ``x``."""
    x = _group(x)
    first, second, g = _boot_ranks(x.n, q, rng, size)
    low = x.at(first)
    return low if second is None else low + g * (x.at(second) - low)


def _percentile(x: Group, q: float) -> float | None:
    """numpy's linear percentile ``q`` of the scope's response times; None without any."""
    if not x.n:
        return None
    if x.ranks is None:
        return float(np.percentile(x.times, q))
    prev, nxt, gamma = linear_plan(np.array([x.n]), (q,))
    return float(lerp(x.at(prev[0]), x.at(nxt[0]), gamma[0])[0])


def _enough(n: int, q: float) -> bool:
    tail = n * min(q, 100.0 - q) / 100.0
    return n >= MIN_SAMPLES and tail >= MIN_TAIL


def percentile_change(
    base: Group | np.ndarray,
    cand: Group | np.ndarray,
    q: float,
    tolerance: float = TOLERANCE_LATENCY,
    *,
    seed: int = _SEED,
    resamples: int | None = None,
) -> Change:
    """Relative change of percentile ``q`` from ``base`` to ``cand`` (sorted NaN-free arrays, or groups);
    ``resamples`` (default :data:`RESAMPLES`, as :func:`wanted_ranks` plans them)."""
    base, cand = _group(base), _group(cand)
    resamples = RESAMPLES if resamples is None else resamples
    metric = _pkey(q)
    b, c = _percentile(base, q), _percentile(cand, q)
    if b is None or c is None or b <= 0:
        return Change(metric, b, c, None, None, None, "unchanged")
    change = c / b - 1.0
    if not (_enough(base.n, q) and _enough(cand.n, q)):
        return Change(metric, b, c, change, None, None, "unchanged")
    rng = np.random.default_rng(seed)
    rb = _boot_percentile(base, q, rng, resamples)
    rc = _boot_percentile(cand, q, rng, resamples)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a resample at 0, or near float's max
        ratio = np.where(rb > 0, rc / rb - 1.0, np.inf)
        lo, hi = (float(v) for v in np.quantile(ratio, [0.025, 0.975]))
    below, above = int(np.count_nonzero(ratio <= 0)), int(np.count_nonzero(ratio >= 0))
    p = min(1.0, 2.0 * (1 + min(below, above)) / (resamples + 1))
    return Change(metric, b, c, change, (lo, hi), p, _status(lo, hi, tolerance))


def wanted_ranks(n_base: int, n_cand: int, key: Key, metrics: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """The 0-based ranks of the baseline's and the candidate's response times in scope ``key`` (``n_base``
    and ``n_cand`` of them) that comparing ``metrics`` there reads: each percentile's two neighbours and,
    when both runs have enough samples for an interval, the bootstrap's ranks, drawn as
    :func:`percentile_change` draws them (same seed, same order)."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for m in metrics:
        q = _percentile_of(m)
        if q is None:
            continue
        for n, ranks in zip((n_base, n_cand), out):
            if n:
                prev, nxt, _gamma = linear_plan(np.array([n]), (q,))
                ranks += [prev[0], nxt[0]]
        if _enough(n_base, q) and _enough(n_cand, q):
            rng = np.random.default_rng(_seed(key, m))
            for n, ranks in zip((n_base, n_cand), out):
                first, second, _g = _boot_ranks(n, q, rng, RESAMPLES)
                ranks += [first] if second is None else [first, second]
    return tuple(np.unique(np.concatenate(r)) if r else np.zeros(0, np.int64) for r in out)


def _percentile_of(metric: str) -> float | None:
    """95.0 for "p95"; None for a metric that is no percentile."""
    if not metric.startswith("p"):
        return None
    try:
        q = float(metric[1:])
    except ValueError:
        return None
    return q if 0 <= q <= 100 else None


def _wilson(x: int, n: int) -> tuple[float, float]:
    p, z2 = x / n, _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def error_rate_change(
    base_failures: int, base_n: int, cand_failures: int, cand_n: int, tolerance: float = TOLERANCE_ERRORS
) -> Change:
    """Difference of error rates (candidate - baseline), Newcombe's interval, two-proportion z p."""
    if base_n == 0 or cand_n == 0:
        return Change(
            "error_rate",
            base_failures / base_n if base_n else None,
            cand_failures / cand_n if cand_n else None,
            None,
            None,
            None,
            "unchanged",
        )
    pb, pc = base_failures / base_n, cand_failures / cand_n
    (lb, ub), (lc, uc) = _wilson(base_failures, base_n), _wilson(cand_failures, cand_n)
    d = pc - pb
    lo = d - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    pooled = (base_failures + cand_failures) / (base_n + cand_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / base_n + 1 / cand_n))
    p = 1.0 if se == 0 else math.erfc(abs(d) / se / math.sqrt(2))
    return Change("error_rate", pb, pc, d, (lo, hi), p, _status(lo, hi, tolerance))


def _status(lo: float, hi: float, tolerance: float) -> str:
    if lo > tolerance:
        return "regression"
    if hi < -tolerance:
        return "improvement"
    return "unchanged"


def _pkey(q: float) -> str:
    return f"p{q:g}"


def _seed(key: Key, metric: str) -> int:
    """A per-row seed: a row's interval does not depend on which other rows were compared."""
    return _SEED ^ zlib.crc32(repr((key, metric)).encode())


def compare_groups(
    base: Group,
    cand: Group,
    key: Key,
    *,
    tolerance_latency: float = TOLERANCE_LATENCY,
    tolerance_errors: float = TOLERANCE_ERRORS,
    metrics: tuple[str, ...] = METRICS,
) -> list[Change]:
    """Every metric of one scope compared."""
    out = []
    for m in metrics:
        if m == "error_rate":
            out.append(error_rate_change(base.failures, base.requests, cand.failures, cand.requests, tolerance_errors))
        else:
            out.append(percentile_change(base, cand, float(m[1:]), tolerance_latency, seed=_seed(key, m)))
    return out


# --- run directories -------------------------------------------------------------------------


def scope_keys(label: str, request_type: str, name: str) -> list[Key]:
    """The scopes a request of a requirement label ("REQ-A,REQ-B", or "") counts in: per requirement the
    request itself and the requirement as a whole; without a requirement, the request alone."""
    ids = [r.strip() for r in label.split(",") if r.strip()]
    if not ids:
        return [(None, request_type, name)]
    return [key for rid in ids for key in ((rid, request_type, name), (rid, None, None))]


def _order(key: Key) -> tuple:
    return (key[0] or "", key[1] is not None, key[1] or "", key[2] or "")


def compare_loaded(
    base: RunSamples,
    cand: RunSamples,
    *,
    tolerance_latency: float = TOLERANCE_LATENCY,
    tolerance_errors: float = TOLERANCE_ERRORS,
) -> dict:
    """The ``loadgate.compare/1`` document of two loaded runs."""
    rows = []
    for key in sorted(base.groups.keys() & cand.groups.keys(), key=_order):
        b, c = base.groups[key], cand.groups[key]
        for ch in compare_groups(b, c, key, tolerance_latency=tolerance_latency, tolerance_errors=tolerance_errors):
            rows.append(
                {
                    "request_type": key[1],
                    "name": key[2],
                    "requirement": key[0],
                    "metric": ch.metric,
                    "baseline": ch.baseline,
                    "candidate": ch.candidate,
                    "change": ch.change,
                    "ci": list(ch.ci) if ch.ci else None,
                    "p_value": ch.p_value,
                    "status": ch.status,
                    "change_kind": "absolute" if ch.metric == "error_rate" else "relative",
                    "sample_sizes": [b.requests, c.requests],
                }
            )
    unmatched = [
        {"requirement": k[0], "request_type": k[1], "name": k[2], "only_in": side}
        for side, mine, other in (("baseline", base, cand), ("candidate", cand, base))
        for k in sorted(mine.groups.keys() - other.groups.keys(), key=_order)
    ]
    return {
        "schema": SCHEMA,
        "baseline": base.run_id,
        "candidate": cand.run_id,
        "verdict": "fail" if any(r["status"] == "regression" for r in rows) else "pass",
        "requests": rows,
        "tolerance": {"latency": tolerance_latency, "error_rate": tolerance_errors},
        "confidence": 0.95,
        "unmatched": unmatched,
    }


# --- the gate's regression thresholds --------------------------------------------------------

CI = tuple[float, float]


def regression_ci(base: RunSamples, cand: RunSamples) -> Callable[[str, str | None, str | None, str], CI | None]:
    """A function (requirement, request_type, name, metric) -> 95% CI of the relative change, worse = up.

    For percentiles and error rate; None where there is no interval (other metrics, too few samples).
    The error rate's interval is of the difference, divided by the baseline rate.
    """

    def ci(requirement: str, request_type: str | None, name: str | None, metric: str) -> CI | None:
        key = (requirement, request_type, name)
        b, c = base.groups.get(key), cand.groups.get(key)
        if b is None or c is None:
            return None
        if metric == "error_rate":
            ch = error_rate_change(b.failures, b.requests, c.failures, c.requests)
            rate = ch.baseline
            return None if ch.ci is None or not rate else (ch.ci[0] / rate, ch.ci[1] / rate)
        q = _percentile_of(metric)
        return None if q is None else percentile_change(b, c, q, seed=_seed(key, metric)).ci

    return ci


def parse_tolerance(text: str) -> float:
    """``"10%"``, ``"0.5pp"`` or a bare fraction ``"0.1"`` -> a fraction >= 0; ValueError if not."""
    raw = text.strip().lower()
    scale = 100.0 if raw.endswith(("%", "pp")) else 1.0
    number = raw.rstrip("%").removesuffix("pp").strip()
    try:
        value = float(number) / scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected a tolerance like 10%, 0.5pp or 0.1, got {text!r}")
    return value

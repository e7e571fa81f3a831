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
import os
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from loadgate.analysis.run_window import run_window
from loadgate.data import rundir
from loadgate.data.samples import read_samples
from loadgate.errors import ConfigError

SCHEMA = "loadgate.compare/1"
METRICS = ("p50", "p95", "p99", "error_rate")
TOLERANCE_LATENCY = 0.10    # relative change of a percentile
TOLERANCE_ERRORS = 0.005    # absolute change of the error rate: half a percentage point
RESAMPLES = 10_000
MIN_TAIL = 5                # samples needed beyond a percentile (either side) for a CI: p95 100, p99 500
MIN_SAMPLES = 20
_Z = 1.959963984540054      # two-sided 95%
_SEED = 20_260_101          # fixed: the same two runs always give the same intervals

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
    """The samples of one scope in one run's window: response times (sorted, ms) and failures."""

    times: np.ndarray
    requests: int
    failures: int


@dataclass(frozen=True)
class RunSamples:
    """A run directory's samples in its analysis window, grouped per request and per requirement."""

    run_id: str
    run_dir: str
    groups: dict[Key, Group]


# --- statistics ------------------------------------------------------------------------------

def _boot_percentile(x: np.ndarray, q: float, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` bootstrap replicates of ``np.percentile(resample(x), q)`` for sorted ``x``."""
    n = len(x)
    h = (n - 1) * q / 100.0
    lo = math.floor(h)
    g, j = h - lo, lo + 1  # j: 1-based rank of the lower order statistic used by "linear"
    u = rng.beta(j, n - j + 1, size)  # the j-th smallest of n uniforms
    first = x[np.minimum((u * n).astype(np.int64), n - 1)]
    if g == 0 or j >= n:
        return first
    # given the j-th smallest of n uniforms is u, the (j+1)-th is u + (1-u) * min of n-j uniforms
    second = x[np.minimum(((u + (1.0 - u) * rng.beta(1, n - j, size)) * n).astype(np.int64), n - 1)]
    return first + g * (second - first)


def _enough(n: int, q: float) -> bool:
    tail = n * min(q, 100.0 - q) / 100.0
    return n >= MIN_SAMPLES and tail >= MIN_TAIL


def percentile_change(base: np.ndarray, cand: np.ndarray, q: float, tolerance: float = TOLERANCE_LATENCY,
                      *, seed: int = _SEED, resamples: int = RESAMPLES) -> Change:
    """Relative change of percentile ``q`` from ``base`` to ``cand`` (both sorted, NaN-free)."""
    metric = _pkey(q)
    b = float(np.percentile(base, q)) if len(base) else None
    c = float(np.percentile(cand, q)) if len(cand) else None
    if b is None or c is None or b <= 0:
        return Change(metric, b, c, None, None, None, "unchanged")
    change = c / b - 1.0
    if not (_enough(len(base), q) and _enough(len(cand), q)):
        return Change(metric, b, c, change, None, None, "unchanged")
    rng = np.random.default_rng(seed)
    rb = _boot_percentile(base, q, rng, resamples)
    rc = _boot_percentile(cand, q, rng, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rb > 0, rc / rb - 1.0, np.inf)
    lo, hi = (float(v) for v in np.quantile(ratio, [0.025, 0.975]))
    below, above = int(np.count_nonzero(ratio <= 0)), int(np.count_nonzero(ratio >= 0))
    p = min(1.0, 2.0 * (1 + min(below, above)) / (resamples + 1))
    return Change(metric, b, c, change, (lo, hi), p, _status(lo, hi, tolerance))


def _wilson(x: int, n: int) -> tuple[float, float]:
    p, z2 = x / n, _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def error_rate_change(base_failures: int, base_n: int, cand_failures: int, cand_n: int,
                      tolerance: float = TOLERANCE_ERRORS) -> Change:
    """Difference of error rates (candidate - baseline), Newcombe's interval, two-proportion z p."""
    if base_n == 0 or cand_n == 0:
        return Change("error_rate", base_failures / base_n if base_n else None,
                      cand_failures / cand_n if cand_n else None, None, None, None, "unchanged")
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


def compare_groups(base: Group, cand: Group, key: Key, *, tolerance_latency: float = TOLERANCE_LATENCY,
                   tolerance_errors: float = TOLERANCE_ERRORS, metrics: tuple[str, ...] = METRICS) -> list[Change]:
    """Every metric of one scope compared."""
    out = []
    for m in metrics:
        if m == "error_rate":
            out.append(error_rate_change(base.failures, base.requests, cand.failures, cand.requests,
                                         tolerance_errors))
        else:
            out.append(percentile_change(base.times, cand.times, float(m[1:]), tolerance_latency,
                                         seed=_seed(key, m)))
    return out


# --- run directories -------------------------------------------------------------------------

def load_run(run_dir: str) -> RunSamples:
    """The samples of ``run_dir`` in its analysis window (whole file if it has no run.json), grouped."""
    rundir.check_run_dir(run_dir)
    path = os.path.join(run_dir, rundir.SAMPLES)
    if not os.path.exists(path):
        raise ConfigError(f"{path}: missing; compare needs the raw samples of both runs")
    cols = ["timestamp", "request_type", "name", "response_time_ms", "success", "requirement"]
    df = read_samples(path, cols).to_pandas()
    if os.path.exists(os.path.join(run_dir, rundir.RUN)):
        w = run_window(rundir.read_json(run_dir, rundir.RUN))
        df = df[(df["timestamp"] >= w.start) & (df["timestamp"] <= w.end)]
    df = df.fillna({"request_type": "", "name": "", "requirement": ""})
    parts: dict[Key, list[tuple[np.ndarray, int, int]]] = {}
    for (label, rtype, name), g in df.groupby(["requirement", "request_type", "name"], sort=True, observed=True):
        times = g["response_time_ms"].to_numpy(dtype=np.float64)
        piece = (times[~np.isnan(times)], len(g), int((~g["success"].fillna(False).astype(bool)).sum()))
        ids = [r.strip() for r in str(label).split(",") if r.strip()] or [None]
        for rid in ids:
            parts.setdefault((rid, rtype, name), []).append(piece)
            if rid is not None:
                parts.setdefault((rid, None, None), []).append(piece)
    groups = {k: Group(np.sort(np.concatenate([p[0] for p in v])), sum(p[1] for p in v), sum(p[2] for p in v))
              for k, v in parts.items()}
    return RunSamples(os.path.basename(os.path.normpath(run_dir)), run_dir, groups)


def _order(key: Key) -> tuple:
    return (key[0] or "", key[1] is not None, key[1] or "", key[2] or "")


def compare_loaded(base: RunSamples, cand: RunSamples, *, tolerance_latency: float = TOLERANCE_LATENCY,
                   tolerance_errors: float = TOLERANCE_ERRORS) -> dict:
    """The ``loadgate.compare/1`` document of two loaded runs."""
    rows = []
    for key in sorted(base.groups.keys() & cand.groups.keys(), key=_order):
        b, c = base.groups[key], cand.groups[key]
        for ch in compare_groups(b, c, key, tolerance_latency=tolerance_latency, tolerance_errors=tolerance_errors):
            rows.append({"request_type": key[1], "name": key[2], "requirement": key[0], "metric": ch.metric,
                         "baseline": ch.baseline, "candidate": ch.candidate, "change": ch.change,
                         "ci": list(ch.ci) if ch.ci else None, "p_value": ch.p_value, "status": ch.status,
                         "change_kind": "absolute" if ch.metric == "error_rate" else "relative",
                         "sample_sizes": [b.requests, c.requests]})
    unmatched = [{"requirement": k[0], "request_type": k[1], "name": k[2], "only_in": side}
                 for side, mine, other in (("baseline", base, cand), ("candidate", cand, base))
                 for k in sorted(mine.groups.keys() - other.groups.keys(), key=_order)]
    return {"schema": SCHEMA, "baseline": base.run_id, "candidate": cand.run_id,
            "verdict": "fail" if any(r["status"] == "regression" for r in rows) else "pass",
            "requests": rows, "tolerance": {"latency": tolerance_latency, "error_rate": tolerance_errors},
            "confidence": 0.95, "unmatched": unmatched}


def compare_runs(baseline_dir: str, candidate_dir: str, *, tolerance_latency: float = TOLERANCE_LATENCY,
                 tolerance_errors: float = TOLERANCE_ERRORS) -> dict:
    """Compare two run directories: the ``loadgate.compare/1`` document (CONTRACT section 9)."""
    base, cand = load_run(baseline_dir), load_run(candidate_dir)
    if not base.groups.keys() & cand.groups.keys():
        raise ConfigError(f"{baseline_dir} and {candidate_dir} have no request or requirement in common "
                          "in their analysis windows: nothing to compare; pick two runs of the same requirement")
    return compare_loaded(base, cand, tolerance_latency=tolerance_latency, tolerance_errors=tolerance_errors)


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
        try:
            q = float(metric[1:]) if metric.startswith("p") else None
        except ValueError:
            q = None
        if q is None:
            return None
        return percentile_change(b.times, c.times, q, seed=_seed(key, metric)).ci
    return ci


# --- the terminal table ----------------------------------------------------------------------

def _fmt_change(x: float | None, kind: str) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x * 100:+.2f}pp" if kind == "absolute" else f"{x * 100:+.1f}%"


def _fmt_value(x: float | None, metric: str) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.2f}%" if metric == "error_rate" else f"{x:.1f} ms"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _plain(text: object) -> str:
    """Printable on a terminal: control characters (escape sequences from a server) shown as '?'."""
    return _CONTROL.sub("?", str(text))


def format_compare(doc: Mapping, *, color: bool = False) -> str:
    """The comparison as an aligned table and a verdict line."""
    header = ["requirement", "request", "metric", "baseline", "candidate", "change", "95% CI", "p", "status"]
    rows = []
    for r in doc["requests"]:
        kind = r.get("change_kind", "relative")
        ci = r.get("ci")
        p = r.get("p_value")
        rows.append([_plain(r["requirement"] or "-"),
                     "(all requests)" if r["request_type"] is None else _plain(f"{r['request_type']} {r['name']}"),
                     r["metric"], _fmt_value(r["baseline"], r["metric"]), _fmt_value(r["candidate"], r["metric"]),
                     _fmt_change(r["change"], kind),
                     f"[{_fmt_change(ci[0], kind)}, {_fmt_change(ci[1], kind)}]" if ci else "(too few)",
                     "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}"), r["status"]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[1] = min(widths[1], 40)
    right = {3, 4, 5, 7}
    colors = {"regression": "31;1", "improvement": "32", "unchanged": "0"}
    out = [f"baseline:  {_plain(doc['baseline'])}", f"candidate: {_plain(doc['candidate'])}"]
    for i, row in enumerate([header, *rows]):
        cells = [(c if len(c) <= widths[j] else c[: widths[j] - 1] + "~") for j, c in enumerate(row)]
        cells = [c.rjust(widths[j]) if j in right else c.ljust(widths[j]) for j, c in enumerate(cells)]
        if color and i > 0:
            cells[-1] = f"\x1b[{colors.get(row[-1], '0')}m{row[-1]}\x1b[0m"
        out.append("  ".join(cells).rstrip())
    for u in doc.get("unmatched") or ():
        what = "(all requests)" if u["request_type"] is None else f"{u['request_type']} {u['name']}"
        out.append(_plain(f"  note: {u['requirement'] or '-'} {what} only in the {u['only_in']}; not compared"))
    n = sum(r["status"] == "regression" for r in doc["requests"])
    tol = doc.get("tolerance") or {}
    out.append(f"verdict: {doc['verdict'].upper()} ({n} regression{'s' if n != 1 else ''}; a regression is a "
               f"95% CI entirely beyond the tolerance: latency +{tol.get('latency', TOLERANCE_LATENCY) * 100:g}%, "
               f"error rate +{tol.get('error_rate', TOLERANCE_ERRORS) * 100:g}pp)")
    return "\n".join(out)


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

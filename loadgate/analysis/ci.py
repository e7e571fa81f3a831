"""Distribution-free confidence intervals of percentiles, from order statistics."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4096)
def ci_ranks(n: int, q: float) -> tuple[int, int]:
    """0-based ranks of a distribution-free 95% interval for percentile q of n values; (-1, -1) if none.

    With B ~ binomial(n, q), P(x[l] <= true percentile < x[u]) >= 95% for l = ppf(2.5%) - 1, u = ppf(97.5%).
    """
    p = q / 100
    if n < 1 or not 0 < p < 1:
        return -1, -1
    lo, hi = _binom_ppf(0.025, n, p) - 1, _binom_ppf(0.975, n, p)
    return (lo, hi) if lo >= 0 and hi <= n - 1 else (-1, -1)


def _binom_ppf(level: float, n: int, p: float) -> int:
    """Smallest k with P(binomial(n, p) <= k) >= level (pmf summed over +-12 sd around the mean)."""
    sd = math.sqrt(n * p * (1 - p))
    lo, hi = max(0, int(n * p - 12 * sd) - 12), min(n, int(n * p + 12 * sd) + 12)
    k = np.arange(lo, hi)
    log_first = (
        math.lgamma(n + 1)
        - math.lgamma(lo + 1)
        - math.lgamma(n - lo + 1)
        + lo * math.log(p)
        + (n - lo) * math.log1p(-p)
    )
    steps = np.log(n - k) - np.log(k + 1) + math.log(p) - math.log1p(-p)  # log pmf(k+1)/pmf(k)
    cdf = np.cumsum(np.exp(log_first + np.concatenate(([0.0], np.cumsum(steps)))))
    return int(lo + min(int(np.searchsorted(cdf, level)), hi - lo))

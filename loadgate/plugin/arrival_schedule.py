"""The start times of an open-model schedule: when each iteration of a requirement is due.

The shape's rate r(t) (:class:`~loadgate.gate.arrival.ArrivalShape`: constant, or linear ramps between
stage targets) has the integral Λ(t), the iterations due by ``t`` seconds after the schedule's start.
Start n (0, 1, 2, ...) of a *constant* schedule is due at Λ⁻¹(n): evenly spaced at a steady rate, and
spread along a ramp as its rate says. A *poisson* schedule is due at Λ⁻¹(E₁ + ... + Eₙ) with Eᵢ
exponential gaps of mean 1 (seeded): random gaps of the same mean.

``N`` processes share a schedule: process ``i`` takes the constant starts n ≡ i (mod N), so together
they start exactly the schedule asked for, interleaved (a phase of i / rate each); a poisson schedule
is split into N independent ones of rate r(t) / N, whose sum is again poisson of rate r(t).

No Locust here: the schedule is plain arithmetic, tested as such.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from loadgate.gate.arrival import ArrivalShape


def inverse(shape: ArrivalShape, n: float) -> float:
    """The time (seconds from the schedule's start) by which ``n`` iterations are due: Λ⁻¹(n); inf when the
    schedule never gets there (its last rate is 0)."""
    if n <= 0:
        return 0.0
    if not shape.stages:
        rate = shape.rate or 0.0
        return n / rate if rate > 0 else math.inf
    elapsed, start = 0.0, shape.rate or 0.0
    for s in shape.stages:
        a, b, d = start, s.target, s.duration
        area = (a + b) / 2 * d
        if n < area and d > 0:
            return elapsed + _within(a, b, d, n)
        n -= area
        elapsed += d
        start = b
    return elapsed + n / start if start > 0 else math.inf


def _within(a: float, b: float, d: float, n: float) -> float:
    """The t in [0, d] where a·t + (b - a)·t²/(2d) = n (the rate moving linearly from a to b over d)."""
    slope = (b - a) / d
    if abs(slope) < 1e-12:
        return n / a
    root = math.sqrt(max(0.0, a * a + 2 * slope * n))
    return min(d, max(0.0, (root - a) / slope))


def start_times(shape: ArrivalShape, index: int = 0, count: int = 1, seed: str = "") -> Iterator[float]:
    """The due times (seconds from the schedule's start) of the starts process ``index`` of ``count`` runs,
    in order; endless while the rate stays above 0."""
    if shape.distribution == "poisson":
        rng = random.Random(f"{seed}:{index}:{count}")
        total = 0.0
        while True:
            total += rng.expovariate(1.0) * count
            t = inverse(shape, total)
            if math.isinf(t):
                return
            yield t
    n = index
    while True:
        t = inverse(shape, n)
        if math.isinf(t):
            return
        yield t
        n += count

"""Capacity steps: the exact summary of one step's measured window, and the knee of throughput over users.

A step of ``loadgate capacity`` is summarised exactly like a run (:func:`summarize` and
:func:`with_schedule` over its own raw samples), so the gate judges it with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pyarrow as pa

from loadgate.analysis.schedule import SCHEDULE_COLUMNS, with_schedule
from loadgate.analysis.summary import COLUMNS, DEFAULT_PERCENTILES, summarize
from loadgate.analysis.summary_doc import SummaryDoc
from loadgate.analysis.window import Window
from loadgate.data.open_samples import open_samples
from loadgate.data.sample_source import SampleSource


def step_summary(
    samples: SampleSource | pa.Table | str,
    start: float,
    end: float,
    *,
    requirements: Sequence[str],
    percentiles: Iterable[float] = (),
) -> SummaryDoc:
    """The summary.json content of the samples that started in [start, end] (no per-second series);
    ``samples``: anything :func:`~loadgate.data.sample_source.open_samples` opens."""
    window = Window(start, end)
    qs = sorted(set(DEFAULT_PERCENTILES) | set(percentiles))
    source = open_samples(samples, [*COLUMNS, *SCHEDULE_COLUMNS])
    summary = summarize(source, window, requirements=requirements, percentiles=qs, series=False)
    return cast(
        SummaryDoc, with_schedule(summary, source, window, requirements=requirements, percentiles=qs, series=False)
    )


@dataclass(frozen=True)
class Knee:
    """Where throughput stops growing with users: the breakpoint of a two-segment linear fit."""

    users: float
    throughput: float
    slope_before: float  # req/s per user below the knee
    slope_after: float  # ... and above it


def knee(users: Sequence[float], throughput: Sequence[float]) -> Knee | None:
    """The breakpoint of the least-squares continuous two-segment fit of throughput over users.

    Tried at every measured user count between the second and the second-to-last (a hinge fit:
    ``a + b·x + c·max(0, x − k)``). None with fewer than four distinct user counts, or when the
    best fit does not bend down (throughput still grows as fast above the breakpoint): no knee
    was reached. A segmented fit needs no dependency and says what it assumes; ``kneed`` finds
    the point of maximum curvature of a smoothed curve, which with 4–8 noisy steps is less stable.
    """
    x = np.asarray(users, dtype=float)
    y = np.asarray(throughput, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    distinct = np.unique(x)
    if len(distinct) < 4:
        return None
    best: tuple[float, float, np.ndarray] | None = None
    for k in distinct[1:-1]:
        design = np.column_stack([np.ones_like(x), x, np.maximum(0.0, x - k)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ coef - y) ** 2))
        if best is None or sse < best[1]:
            best = (float(k), sse, coef)
    assert best is not None
    k, _sse, (a, b, c) = best
    after = b + c
    if not (b > 0 and after < 0.5 * b):  # a knee: growth at least halves beyond it
        return None
    return Knee(users=k, throughput=float(a + b * k), slope_before=float(b), slope_after=float(after))

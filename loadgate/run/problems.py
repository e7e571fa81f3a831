"""Run-level problems found in what the recorder saw: lost workers, lost samples, a saturated generator,
a generator that fell behind its users' schedule."""

from __future__ import annotations

import time
from typing import Mapping

from loadgate.gate.verdict import GENERATOR_BEHIND, GENERATOR_SATURATED

SATURATION_CPU = 90.0  # % of one core above which a load generator is saturated
SATURATION_SHARE = 0.10  # ... for more than this share of the window's seconds
LATE_SHARE = 0.05  # paced iterations the generator started late: more than this share ...
LATE_MIN_ITERATIONS = 20  # ... of at least this many in the window: it fell behind
BLOCKED_GAP_S = 2.5  # a CPU sample (taken each second) this long after the previous one: the loop was blocked


def worker_problems(workers: Mapping[str, dict], allow_loss: bool) -> list[str]:
    """Lost workers (unless allowed) and samples that were sent but never arrived."""
    problems = []
    for wid, w in sorted(workers.items()):
        lost = w.get("lost")
        if lost and not allow_loss:
            noticed = lost.get("noticed_after_s")
            problems.append(
                f"worker {wid} was lost: last heard from {lost['after_s']:.0f}s into the run"
                + (f" (its loss noticed at {noticed:.0f}s)" if noticed is not None else "")
                + f", after delivering {lost['delivered']} samples (--allow-worker-loss accepts this)"
            )
        sent, received = w.get("sent"), w.get("received") or 0
        if sent is not None and sent > received:
            problems.append(f"{sent - received} of the {sent} samples worker {wid} sent never arrived")
    return problems


def generator_problems(recorder: Mapping, warmup: float) -> list[str]:
    """A saturated generator or one behind its users' schedule, over the run's window as the recorder saw it:
    from the end of ramp-up (or the start) plus ``warmup`` to the end."""
    start = (recorder.get("ramp_up_done") or recorder.get("start") or 0) + warmup
    return [
        *saturation_problems(recorder.get("cpu") or {}, start, recorder.get("end") or time.time()),
        *lateness_problems(recorder.get("schedule") or {}, start, recorder.get("end") or time.time()),
    ]


def saturation_problems(cpu: Mapping[str, list], start: float, end: float) -> list[str]:
    """A load generator above 90% of a core for more than 10% of the window's seconds is saturated.

    Its CPU is sampled each second by its own event loop, so a loop blocked for seconds (work that never
    yields) leaves a gap instead of hot samples: each second of a gap longer than ``BLOCKED_GAP_S`` counts
    as a saturated second."""
    problems = []
    for proc, series in sorted(cpu.items()):
        in_window = [pct for t, pct in series if start <= t <= end]
        blocked = _blocked_seconds(sorted(t for t, _pct in series), start, end)
        if not in_window and not blocked:
            continue
        hot = sum(1 for pct in in_window if pct > SATURATION_CPU) + blocked
        seconds = len(in_window) + blocked
        if hot > SATURATION_SHARE * seconds:
            loop = f" (its event loop was blocked for {blocked:.0f} s)" if blocked else ""
            problems.append(
                f"{GENERATOR_SATURATED}: {proc} was above {SATURATION_CPU:.0f}% CPU in {hot:.0f} of "
                f"{seconds:.0f} seconds of the window{loop}; add --workers or lower the load per "
                "process"
            )
    return problems


def _blocked_seconds(times: list[float], start: float, end: float) -> float:
    """Seconds of [start, end] the once-a-second CPU samples skipped: gaps longer than BLOCKED_GAP_S, less
    the second each sample accounts for. The tail after the last sample is not counted (a lost worker)."""
    previous = max((t for t in times if t <= start), default=start)
    blocked = 0.0
    for t in times:
        if start < t <= end:
            if t - previous > BLOCKED_GAP_S:
                blocked += t - previous - 1.0
            previous = t
    return blocked


def lateness_problems(schedule: Mapping[str, list], start: float, end: float) -> list[str]:
    """A load generator that started more than 5% of its paced iterations late, although each previous
    response was back in time, fell behind the schedule: the latency it measures is not the target's."""
    problems = []
    for proc, series in sorted(schedule.items()):
        started = sum(n for t, n, _late in series if start <= t <= end)
        late = sum(k for t, _n, k in series if start <= t <= end)
        if started >= LATE_MIN_ITERATIONS and late > LATE_SHARE * started:
            problems.append(
                f"{GENERATOR_BEHIND}: {proc} started {late} of {started} paced iterations "
                "late although the previous response was back in time; add --workers or lower the "
                "load per process"
            )
    return problems

"""Run-level problems found in what the recorder saw: lost workers, lost samples, a saturated generator,
a generator that fell behind its users' schedule."""
from __future__ import annotations

from typing import Mapping

SATURATION_CPU = 90.0          # % of one core above which a load generator is saturated
SATURATION_SHARE = 0.10        # ... for more than this share of the window's seconds
LATE_SHARE = 0.05              # paced iterations the generator started late: more than this share ...
LATE_MIN_ITERATIONS = 20       # ... of at least this many in the window: it fell behind


def worker_problems(workers: Mapping[str, dict], allow_loss: bool) -> list[str]:
    """Lost workers (unless allowed) and samples that were sent but never arrived."""
    problems = []
    for wid, w in sorted(workers.items()):
        lost = w.get("lost")
        if lost and not allow_loss:
            noticed = lost.get("noticed_after_s")
            problems.append(f"worker {wid} was lost: last heard from {lost['after_s']:.0f}s into the run"
                            + (f" (its loss noticed at {noticed:.0f}s)" if noticed is not None else "")
                            + f", after delivering {lost['delivered']} samples (--allow-worker-loss accepts this)")
        sent, received = w.get("sent"), w.get("received") or 0
        if sent is not None and sent > received:
            problems.append(f"{sent - received} of the {sent} samples worker {wid} sent never arrived")
    return problems


def saturation_problems(cpu: Mapping[str, list], start: float, end: float) -> list[str]:
    """A load generator above 90% of a core for more than 10% of the window's seconds is saturated."""
    problems = []
    for proc, series in sorted(cpu.items()):
        in_window = [pct for t, pct in series if start <= t <= end]
        if not in_window:
            continue
        hot = sum(1 for pct in in_window if pct > SATURATION_CPU)
        if hot > SATURATION_SHARE * len(in_window):
            problems.append(f"load generator saturated: {proc} was above {SATURATION_CPU:.0f}% CPU in {hot} of "
                            f"{len(in_window)} seconds of the window; add --workers or lower the load per process")
    return problems


def lateness_problems(schedule: Mapping[str, list], start: float, end: float) -> list[str]:
    """A load generator that started more than 5% of its paced iterations late, although each previous
    response was back in time, fell behind the schedule: the latency it measures is not the target's."""
    problems = []
    for proc, series in sorted(schedule.items()):
        started = sum(n for t, n, _late in series if start <= t <= end)
        late = sum(k for t, _n, k in series if start <= t <= end)
        if started >= LATE_MIN_ITERATIONS and late > LATE_SHARE * started:
            problems.append(f"load generator behind schedule: {proc} started {late} of {started} paced iterations "
                            "late although the previous response was back in time; add --workers or lower the "
                            "load per process")
    return problems

"""Resource use of the system under test over given windows (a capacity search's steps), from Prometheus.

In absolute units rather than the thresholds' percentages, so a cost per user can be read off directly:
busy CPU cores and memory in use, summed over the series the selector names. node_exporter by default
(busy cores: the sum over CPUs of 1 − the idle share; memory: MemTotal − MemAvailable); with a
``container=`` matcher in the selector, cAdvisor's container CPU and working set. The machines' size
(CPUs, memory) comes with it, for the estimate's assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from loadgate.sources import prometheus
from loadgate.sources.prometheus import _matchers


def queries(selector: str | None, rate_window_s: float) -> dict[str, str]:
    """The PromQL of ``cpu`` (cores busy), ``memory`` (bytes in use), ``cpus`` and ``memory_total``."""
    window = f"{max(1, math.ceil(rate_window_s))}s"
    if selector and "container=" in selector.replace(" ", ""):
        sel = _matchers(selector)
        return {
            "cpu": f"sum(rate(container_cpu_usage_seconds_total{sel}[{window}]))",
            "memory": f"sum(container_memory_working_set_bytes{sel})",
            "cpus": f"sum(container_spec_cpu_quota{sel} / container_spec_cpu_period{sel})",
            "memory_total": f"sum(container_spec_memory_limit_bytes{sel})",
        }
    idle, sel = _matchers(selector, 'mode="idle"'), _matchers(selector)
    return {
        "cpu": f"sum(1 - rate(node_cpu_seconds_total{idle}[{window}]))",
        "memory": f"sum(node_memory_MemTotal_bytes{sel} - node_memory_MemAvailable_bytes{sel})",
        "cpus": f"count(node_cpu_seconds_total{idle})",
        "memory_total": f"sum(node_memory_MemTotal_bytes{sel})",
    }


def _mean(url: str, query: str, start: float, end: float, step: float) -> float | None:
    values = [v for s in prometheus.query_range(url, query, start, end, step) for v in s.values if math.isfinite(v)]
    return sum(values) / len(values) if values else None


def step_use(
    url: str, selector: str | None, windows: Sequence[tuple[float, float]], step: float | None = None
) -> tuple[list[dict], dict]:
    """Per window (start, end): {"cpu_cores", "memory_bytes"} (None where Prometheus has no point), and the
    machine's {"cpu_cores", "memory_bytes"} over the first window. RunError/ConfigError when it cannot be asked."""
    step = step or prometheus.scrape_interval(url)
    q = queries(selector, 4 * step)
    out = [
        {"cpu_cores": _mean(url, q["cpu"], a, b, step), "memory_bytes": _mean(url, q["memory"], a, b, step)}
        for a, b in windows
    ]
    machine = {}
    if windows:
        a, b = windows[0]
        machine = {
            "cpu_cores": _mean(url, q["cpus"], a, b, step),
            "memory_bytes": _mean(url, q["memory_total"], a, b, step),
        }
    return out, {**machine, "queries": q}

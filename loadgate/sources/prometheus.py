"""Prometheus' HTTP API: ``query_range`` over a window, the scrape interval, and the built-in queries.

Plain ``requests`` (it comes with Locust): three GET endpoints do not earn a client library. An
unreachable server or a reply that is not Prometheus' JSON is a RunError (the threshold becomes
inconclusive); a query the server rejects is a ConfigError (the user must fix the PromQL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import requests

from loadgate.errors import ConfigError, RunError

TIMEOUT_S = 10.0
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series in one query_range
DEFAULT_STEP_S = 15.0  # Prometheus' own default scrape interval, when the server does not say
# node_exporter's filesystems that are not disks (memory-backed or pseudo file systems)
_NOT_DISKS = 'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|fuse.lxcfs|autofs"'


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels as text (``{instance="a"}``) and its points."""

    labels: str
    timestamps: tuple[float, ...]
    values: tuple[float, ...]


def _matchers(*parts: str | None) -> str:
    inner = ",".join(p.strip().strip("{}").strip() for p in parts if p and p.strip().strip("{}").strip())
    return "{" + inner + "}" if inner else ""


def builtin_query(
    metric: str, selector: str | None, mountpoint: str | None = None, *, rate_window_s: float = 60.0
) -> str:
    """The PromQL loadgate uses for ``cpu``, ``memory`` or ``disk``, narrowed by ``selector``.

    With a ``container=`` matcher in the selector, cAdvisor's container series against the container's
    limits; else node_exporter's node series. One series per instance (disk: the fullest filesystem).
    """
    window = f"{max(1, math.ceil(rate_window_s))}s"
    if selector and "container=" in selector.replace(" ", ""):
        sel = _matchers(selector)
        if metric == "cpu":
            return (
                f"100 * sum(rate(container_cpu_usage_seconds_total{sel}[{window}])) / "
                f"sum(container_spec_cpu_quota{sel} / container_spec_cpu_period{sel})"
            )
        if metric == "memory":
            return f"100 * sum(container_memory_working_set_bytes{sel}) / sum(container_spec_memory_limit_bytes{sel})"
    if metric == "cpu":
        idle = _matchers(selector, 'mode="idle"')
        return f"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{idle}[{window}])))"
    if metric == "memory":
        sel = _matchers(selector)
        return f"100 * (1 - node_memory_MemAvailable_bytes{sel} / node_memory_MemTotal_bytes{sel})"
    if metric == "disk":
        sel = _matchers(selector, _NOT_DISKS, f'mountpoint="{mountpoint}"' if mountpoint else None)
        # df's Use%: used / (used + available to users); the reserved blocks count as neither
        return (
            f"max by (instance) (100 * (1 - node_filesystem_avail_bytes{sel} / (node_filesystem_size_bytes{sel}"
            f" - node_filesystem_free_bytes{sel} + node_filesystem_avail_bytes{sel})))"
        )
    raise ValueError(f"no built-in query for {metric!r}")


def _get(url: str, path: str, params: dict | None = None) -> dict:
    """The ``data`` of one API reply; RunError when unreachable or malformed, ConfigError for a bad query."""
    full = url.rstrip("/") + path
    try:
        reply = requests.get(full, params=params, timeout=TIMEOUT_S)
    except requests.Timeout:
        raise RunError(f"Prometheus at {url} is unreachable (no answer within {TIMEOUT_S:g}s)") from None
    except requests.ConnectionError:
        raise RunError(f"Prometheus at {url} is unreachable (cannot connect)") from None
    except requests.RequestException as exc:
        raise RunError(f"Prometheus at {url} is unreachable ({type(exc).__name__}: {_short(exc)})") from None
    try:
        doc = reply.json()
    except ValueError:
        raise RunError(
            f"Prometheus at {url} answered {path} with HTTP {reply.status_code} and no JSON "
            "(is it a Prometheus server?)"
        ) from None
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        raise RunError(f"Prometheus at {url} answered {path} with an unexpected document")
    if doc["status"] == "error":
        what = f"{doc.get('errorType', 'error')}: {doc.get('error', '')}".strip()
        if doc.get("errorType") == "bad_data":
            raise ConfigError(what)
        raise RunError(f"Prometheus at {url} failed {path} ({what})")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise RunError(f"Prometheus at {url} answered {path} without data")
    return data


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def scrape_interval(url: str) -> float:
    """The shortest scrape interval of the server's active targets (seconds); its default without targets."""
    data = _get(url, "/api/v1/targets", {"state": "active"})
    intervals = []
    for target in data.get("activeTargets") or ():
        text = str((target or {}).get("scrapeInterval") or "")
        try:
            intervals.append(_seconds(text))
        except ValueError:
            continue
    return min(intervals) if intervals else DEFAULT_STEP_S


def _seconds(text: str) -> float:
    """Prometheus durations as it prints them: ``1s``, ``15s``, ``1m30s``, ``500ms``."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * scale[u] for n, u in parts)


def query_range(url: str, query: str, start: float, end: float, step: float) -> list[Series]:
    """Every series of ``query`` evaluated at start, start + step, ... <= end (in chunks Prometheus accepts)."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    chunk = step * (MAX_POINTS - 1)
    t = math.ceil(start * 1000) / 1000  # the API takes ms: rounding up keeps the first point inside the window
    while t <= end:
        stop = min(end, t + chunk)
        data = _get(
            url, "/api/v1/query_range", {"query": query, "start": f"{t:.3f}", "end": f"{stop:.3f}", "step": f"{step:g}"}
        )
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise RunError(f"Prometheus at {url} answered query_range with {data.get('resultType')!r}, not a matrix")
        for item in data["result"]:
            try:
                labels = _labels(item.get("metric") or {})
                ts, vs = points.setdefault(labels, ([], []))
                for stamp, value in item.get("values") or ():
                    if ts and float(stamp) <= ts[-1]:
                        continue  # a chunk's first point repeats the previous chunk's last
                    ts.append(float(stamp))
                    vs.append(float(value))
            except (AttributeError, TypeError, ValueError):
                raise RunError(f"Prometheus at {url} answered query_range with a malformed series") from None
        t = stop + step
    return [Series(k, tuple(ts), tuple(vs)) for k, (ts, vs) in sorted(points.items())]


def _labels(metric: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def instant_series(url: str, query: str) -> int:
    """Evaluate ``query`` once, now: how many series it gives. ConfigError with the server's message when
    the PromQL is bad, RunError when the server cannot be asked."""
    data = _get(url, "/api/v1/query", {"query": query})
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return 1
    return len(result) if isinstance(result, list) else 0

"""The resource part of a threshold file: ``load.resources`` and items with ``metric: cpu|memory|disk|promql``.

Parsed into :class:`loadgate.sources.collect.ResourceQuery`, which the sources evaluate after the run.
Every problem is a one-line ConfigError with file:line and key, as for the other thresholds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loadgate.gate.yaml_lines import FileErrors, LineMap, quote
from loadgate.sources.collect import RESOURCE_METRICS, ResourceQuery
from loadgate.units import parse_duration

SETTINGS_KEYS = ("source", "prometheus", "selector", "step")
ITEM_KEYS = ("aggregate", "aggregate_series", "query", "unit", "mountpoint")
SOURCES = ("local", "prometheus")
_AGGREGATE_RE = re.compile(r"^p(\d+(?:\.\d{1,4})?)$")
_AGGREGATE_FORMS = "mean, max or a percentile like p95"
_LABELS_RE = re.compile(r'^\s*\{?\s*([a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?\s*)*\}?\s*$')


@dataclass(frozen=True)
class ResourceSettings:
    """``load.resources``: where resource values come from (local when the block is absent)."""

    source: str = "local"
    prometheus: str | None = None
    selector: str | None = None
    step: float | None = None


def parse_settings(f: FileErrors, raw: Any, line: int) -> ResourceSettings:
    """``load.resources`` of a threshold file."""
    if not isinstance(raw, LineMap):
        raise f.error(
            line,
            "load.resources",
            f"{quote(raw)} is not a mapping",
            "keys source (local or prometheus), prometheus (URL), selector, step",
        )
    f.check_keys(raw, "load.resources", SETTINGS_KEYS)
    at = raw.key_lines
    source = raw.get("source", "prometheus" if "prometheus" in raw else "local")
    if source not in SOURCES:
        raise f.error(
            at.get("source", line),
            "load.resources.source",
            f"{quote(source)} is not a source",
            "local (this machine, sampled by loadgate) or prometheus",
        )
    url = raw.get("prometheus")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url)):
        raise f.error(
            at["prometheus"],
            "load.resources.prometheus",
            f"{quote(url)} is not an HTTP URL",
            "the server's base URL, like http://127.0.0.1:9090",
        )
    if url is not None and source == "local":
        raise f.error(
            at["prometheus"],
            "load.resources.prometheus",
            "is not used with source: local",
            "source: prometheus beside it, or remove it",
        )
    selector = raw.get("selector")
    if selector is not None and (not isinstance(selector, str) or not _LABELS_RE.match(selector)):
        raise f.error(
            at["selector"],
            "load.resources.selector",
            f"{quote(selector)} is not a list of label matchers",
            'PromQL matchers like \'instance="10.0.0.5:9100"\' or \'job="node", instance=~"web.*"\'',
        )
    if selector is not None and source == "local":
        raise f.error(
            at["selector"],
            "load.resources.selector",
            "is not used with source: local",
            "source: prometheus beside it, or remove it",
        )
    step = raw.get("step")
    if step is not None:
        try:
            step = None if isinstance(step, (list, dict, bool)) else parse_duration(step)
        except (TypeError, ValueError):
            step = None
        if step is None or step <= 0:
            raise f.error(
                at["step"],
                "load.resources.step",
                f"{quote(raw.get('step'))} is not a positive duration",
                "the scrape interval, like 15s (default: asked from the server)",
            )
    return ResourceSettings(source, url, selector.strip() if selector else None, step)


def is_resource(metric: Any) -> bool:
    return isinstance(metric, str) and metric in RESOURCE_METRICS


def strip_unit(raw: Any, unit: str | None) -> Any:
    """A promql condition may repeat its free-text unit (">5 req/s" with unit: req/s); the number is compared."""
    if isinstance(raw, str) and unit and raw.strip().lower().endswith(unit.strip().lower()):
        return raw.strip()[: -len(unit.strip())].rstrip()
    return raw


def parse_item(
    f: FileErrors,
    item: LineMap,
    line: int,
    where: str,
    requirement: str,
    metric: str,
    settings: ResourceSettings | None,
) -> ResourceQuery:
    """The resource keys of one threshold item (its target and alert are parsed by the caller)."""
    at = item.key_lines
    s = settings or ResourceSettings()
    for key in ("request", "regression", "min_requests"):
        if key in item:
            raise f.error(
                at[key],
                f"{where}.{key}",
                f"does not apply to metric {metric} (a resource of the target, not a request)",
                "remove it; resource thresholds take aggregate and target/alert",
            )
    aggregate = item.get("aggregate", "mean")
    m = _AGGREGATE_RE.match(str(aggregate))
    if aggregate not in ("mean", "max") and not (m and 0 < float(m.group(1)) < 100):
        raise f.error(
            at.get("aggregate", line), f"{where}.aggregate", f"{quote(aggregate)} is not an aggregate", _AGGREGATE_FORMS
        )
    combine = item.get("aggregate_series")
    if combine is not None and combine not in ("max", "sum", "mean"):
        raise f.error(
            at["aggregate_series"],
            f"{where}.aggregate_series",
            f"{quote(combine)} is not a way to combine series",
            "max, sum or mean",
        )
    query = item.get("query")
    if metric == "promql":
        if not isinstance(query, str) or not query.strip():
            raise f.error(
                at.get("query", line),
                f"{where}.query",
                "missing" if query is None else f"{quote(query)} is not a PromQL query",
                "a PromQL expression giving one series, like 'sum(rate(http_requests_total[30s]))'",
            )
        if s.source != "prometheus":
            raise f.error(
                at["metric"],
                f"{where}.metric",
                "promql needs a Prometheus source",
                "load.resources with source: prometheus and prometheus: URL",
            )
    elif query is not None:
        raise f.error(
            at["query"],
            f"{where}.query",
            f"does not apply to metric {metric} (it has a built-in query)",
            "metric: promql for your own query, or remove it",
        )
    unit = item.get("unit")
    if unit is not None and (metric != "promql" or not isinstance(unit, str) or not unit.strip()):
        raise f.error(
            at["unit"],
            f"{where}.unit",
            f"{quote(unit)} is not usable here"
            if metric == "promql"
            else f"does not apply to metric {metric} (its unit is %)",
            "free text like req/s, for promql only",
        )
    mountpoint = item.get("mountpoint")
    if mountpoint is not None and (
        metric != "disk" or not isinstance(mountpoint, str) or not mountpoint.startswith("/")
    ):
        raise f.error(
            at["mountpoint"],
            f"{where}.mountpoint",
            f"{quote(mountpoint)} is not usable here" if metric == "disk" else f"does not apply to metric {metric}",
            'a mount point like "/" on a disk threshold',
        )
    return ResourceQuery(
        key=f"{f.path}:{line}",
        requirement=requirement,
        metric=metric,
        source=s.source,
        aggregate=str(aggregate),
        aggregate_series=combine,
        query=query.strip() if isinstance(query, str) else None,
        selector=s.selector,
        mountpoint=mountpoint,
        prometheus=s.prometheus,
        step=s.step,
        unit=(unit.strip() if unit else "") if metric == "promql" else "%",
    )

"""Threshold files (``thresholds/*.yaml``, one requirement each): parsed, checked, with file:line.

Every problem is a one-line ``ConfigError``: ``<file>:<line>: <key>: <what is wrong>; expected <form>``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from loadgate.errors import ConfigError
from loadgate.gate.conditions import (
    DROPPED,
    EXPECTED,
    Condition,
    check_levels,
    metric_kind,
    parse_condition,
)
from loadgate.gate import dropped, notify_spec, plan_settings, resources
from loadgate.gate.load_block import LoadDefaults, parse_load
from loadgate.gate.yaml_lines import (
    FileErrors,
    LineLoader,
    LineMap,
    LineSeq,
    is_int,
    parse_fast,
    quote,
)
from loadgate.sources.collect import ResourceQuery
from loadgate.units import parse_duration

REQUIREMENT_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")

_TOP_KEYS = ("requirement", "title", "load", "capacity", "thresholds", "notify")
_ITEM_KEYS = (
    "metric",
    "request",
    "target",
    "alert",
    "regression",
    "min_requests",
    "latency",
    "abort_on_fail",
    "abort_after",
    "abort_window",
    *resources.ITEM_KEYS,
)
DEFAULT_ABORT_WINDOW_S = 10.0
_NAMED_METRICS = ("mean", "min", "max", "error_rate", "throughput", DROPPED, "max_users", "max_throughput", "headroom")
_METRIC_FORMS = (
    "p50, p90, p95, p99, p99.9 (any pNN or pNN.N), mean, min, max, error_rate, throughput, "
    "dropped_iterations (an arrival shape's starts that found no free user), "
    "a resource: cpu, memory, disk, promql (or, for loadgate capacity, max_users, max_throughput or headroom)"
)
_METRIC_NAMES = ("p50", "p90", "p95", "p99", "p99.9", *_NAMED_METRICS, "cpu", "memory", "disk", "promql")
_METRIC_ALIASES = {
    "avg": "mean",
    "average": "mean",
    "median": "p50",
    "rps": "throughput",
    "errors": "error_rate",
    "error-rate": "error_rate",
    "failure_rate": "error_rate",
}
_PERCENTILE_RE = re.compile(r"^p(\d+(?:\.\d{1,4})?)$")  # 4 decimals at most: f"p{q:g}" must round-trip


@dataclass(frozen=True)
class Threshold:
    """One list item of a threshold file."""

    requirement: str
    metric: str
    request: str | None
    target: Condition | None
    alert: Condition | None
    regression: Condition | None
    min_requests: int
    source: str
    abort_on_fail: bool = False  # stop the run early when the alert holds over the last abort_window
    abort_after: float = 0.0  # grace: seconds after the test starts before aborting is allowed
    abort_window: float = DEFAULT_ABORT_WINDOW_S  # the sliding window (s) the abort check looks at
    latency: str | None = None  # "intended" or "service"; None: intended where the scope is paced
    resource: ResourceQuery | None = None  # cpu, memory, disk, promql: a resource of the target, not requests

    @property
    def percentile(self) -> float | None:
        """95.0 for ``p95``, 99.9 for ``p99.9``, None for other metrics."""
        m = _PERCENTILE_RE.match(self.metric)
        return float(m.group(1)) if m else None

    @property
    def unit(self) -> str:
        """Unit of the metric's value: ``ms``, ``ratio`` or ``req/s``; ``%`` or promql's own for resources."""
        if self.resource is not None:
            return self.resource.unit
        if self.metric == DROPPED:  # a count of iterations, or (a level in %) a share of the scheduled starts
            level = self.target or self.alert
            return level.unit if level is not None else "iterations"
        return metric_kind(self.metric).replace("time", "ms")


@dataclass(frozen=True)
class ThresholdFile:
    """One parsed threshold file."""

    path: str
    requirement: str
    title: str
    load: LoadDefaults
    thresholds: tuple[Threshold, ...]
    sha256: str
    notify: tuple[notify_spec.NotifyEntry, ...] = ()  # who hears about this requirement's verdict
    capacity: plan_settings.CapacitySettings | None = None  # the capacity: block (peak, growth, limits)


# --- the file --------------------------------------------------------------------------------


def _parse_metric(f: FileErrors, raw: Any, line: int, where: str) -> str:
    if isinstance(raw, str):
        if raw in _NAMED_METRICS or resources.is_resource(raw):
            return raw
        m = _PERCENTILE_RE.match(raw)
        if m:
            q = float(m.group(1))
            if 0 < q < 100:
                return f"p{q:g}"
            raise f.error(
                line, where, f"percentile {quote(raw)} is out of range", "0 < NN < 100 (use min or max for the ends)"
            )
    alias = _METRIC_ALIASES.get(str(raw).lower())
    close = [alias] if alias else difflib.get_close_matches(str(raw), _METRIC_NAMES, n=1, cutoff=0.6)
    did = f" (did you mean {close[0]!r}?)" if close else ""
    raise f.error(line, where, f"unknown metric {quote(raw)}{did}", _METRIC_FORMS)


# Over the size/complexity limit (noqa): one validation branch per threshold key.
def _parse_item(  # noqa: C901
    f: FileErrors,
    item: Any,
    line: int,
    index: int,
    requirement: str,
    settings: resources.ResourceSettings | None = None,
) -> Threshold:
    where = f"thresholds[{index}]"
    if not isinstance(item, LineMap):
        raise f.error(
            line, where, f"{quote(item)} is not a mapping", "an item like '- metric: p95' with target and/or alert"
        )
    f.check_keys(item, where, _ITEM_KEYS)
    lines = item.key_lines
    if "metric" not in item:
        raise f.error(line, f"{where}.metric", "missing", _METRIC_FORMS)
    metric = _parse_metric(f, item["metric"], lines["metric"], f"{where}.metric")
    kind = metric_kind(metric)
    resource = (
        resources.parse_item(f, item, line, where, requirement, metric, settings)
        if resources.is_resource(metric)
        else None
    )
    if resource is None:
        for key in resources.ITEM_KEYS:
            if key in item:
                raise f.error(
                    lines[key],
                    f"{where}.{key}",
                    f"does not apply to metric {metric}",
                    "a resource metric (cpu, memory, disk, promql) beside it, or remove it",
                )
    conditions: dict[str, Condition | None] = {}
    for key in ("target", "alert", "regression"):
        if key not in item:
            conditions[key] = None
            continue
        raw = resources.strip_unit(item[key], resource.unit) if metric == "promql" and resource else item[key]
        try:
            conditions[key] = parse_condition(raw, "regression" if key == "regression" else kind, metric)
        except ValueError as exc:
            raise f.error(
                lines[key], f"{where}.{key}", str(exc), EXPECTED["regression" if key == "regression" else kind]
            ) from None
    target, alert, regression = conditions["target"], conditions["alert"], conditions["regression"]
    if target is None and alert is None and regression is None:
        raise f.error(
            line,
            where,
            f"{metric} has no target, alert or regression",
            'at least one, like target: "<200ms" or alert: ">500ms"',
        )
    if regression is not None and (target is not None or alert is not None):
        key = "target" if target is not None else "alert"
        raise f.error(
            lines["regression"],
            f"{where}.regression",
            f"cannot share an item with {key} (one result holds one value)",
            "a separate list item with the same metric for the regression",
        )
    dropped.check_item(f, item, where, metric, (target, alert, regression))
    if target is not None and alert is not None:
        check_levels(f, lines["alert"], where, target, alert)
    request = item.get("request")
    if "request" in item:
        if not isinstance(request, str) or not request.strip():
            raise f.error(
                lines["request"],
                f"{where}.request",
                f"{quote(request)} is not a request name",
                'method and name as Locust reports them, like "GET /api/users/[id]"',
            )
        request = request.strip()
    min_requests = item.get("min_requests", 1)
    if not is_int(min_requests) or min_requests < 1:
        raise f.error(
            lines.get("min_requests", line),
            f"{where}.min_requests",
            f"{quote(min_requests)} is not a positive whole number",
            "a count of requests like 500",
        )
    abort = _parse_abort(f, item, line, where, alert)
    return Threshold(
        requirement,
        metric,
        request,
        target,
        alert,
        regression,
        min_requests,
        f"{f.path}:{line}",
        *abort,
        latency=_parse_latency(f, item, where, metric),
        resource=resource,
    )


LATENCIES = ("intended", "service")


def _parse_latency(f: FileErrors, item: LineMap, where: str, metric: str) -> str | None:
    """``latency: intended|service``, for response-time metrics only."""
    if "latency" not in item:
        return None
    value, line = item["latency"], item.key_lines["latency"]
    if value not in LATENCIES:
        raise f.error(
            line,
            f"{where}.latency",
            f"{quote(value)} is not a kind of latency",
            "intended (from the schedule of paced users) or service (Locust's response time)",
        )
    if metric_kind(metric) != "time":
        raise f.error(
            line,
            f"{where}.latency",
            f"{metric} is not a response time",
            "latency only on p50, p95, pNN, mean, min or max",
        )
    kind: str = value  # one of LATENCIES
    return kind


def _parse_abort(
    f: FileErrors, item: LineMap, line: int, where: str, alert: Condition | None
) -> tuple[bool, float, float]:
    """``abort_on_fail`` (with ``abort_after`` grace and ``abort_window``): only with an alert."""
    lines = item.key_lines
    on = item.get("abort_on_fail", False)
    if not isinstance(on, bool):
        raise f.error(
            lines["abort_on_fail"], f"{where}.abort_on_fail", f"{quote(on)} is not true or false", "abort_on_fail: true"
        )
    durations = {}
    for key, default in (("abort_after", 0.0), ("abort_window", DEFAULT_ABORT_WINDOW_S)):
        if key not in item:
            durations[key] = default
            continue
        if not on:
            raise f.error(
                lines[key],
                f"{where}.{key}",
                "has no effect without abort_on_fail: true",
                "abort_on_fail: true beside it, or remove it",
            )
        try:
            durations[key] = parse_duration(item[key])
        except ValueError:
            raise f.error(
                lines[key], f"{where}.{key}", f"{quote(item[key])} is not a duration", "a duration like 30s or 1m"
            ) from None
        if key == "abort_window" and durations[key] <= 0:
            raise f.error(lines[key], f"{where}.{key}", "must be longer than 0s", "a duration like 10s")
    if on and alert is None:
        raise f.error(
            lines["abort_on_fail"],
            f"{where}.abort_on_fail",
            "needs an alert level to abort on",
            'an alert like ">500ms" in the same item',
        )
    return on, durations["abort_after"], durations["abort_window"]


def _parse_document(f: FileErrors, doc: Any, sha256: str) -> tuple[ThresholdFile, int]:
    expected_top = "a mapping with keys " + ", ".join(_TOP_KEYS)
    if doc is None:
        raise f.error(1, "(top level)", "the file is empty", expected_top)
    if not isinstance(doc, LineMap):
        what = "a list" if isinstance(doc, list) else f"the value {quote(doc)}"
        raise f.error(getattr(doc, "line", 1), "(top level)", f"{what} is not a threshold file", expected_top)
    f.check_keys(doc, "", _TOP_KEYS)
    lines = doc.key_lines
    requirement = doc.get("requirement")
    if "requirement" not in doc:
        raise f.error(doc.line, "requirement", "missing", "a requirement ID like REQ-PERF-001")
    if not isinstance(requirement, str) or not REQUIREMENT_RE.match(requirement):
        raise f.error(
            lines["requirement"],
            "requirement",
            f"{quote(requirement)} is not a requirement ID",
            f"a form like REQ-PERF-001 (pattern {REQUIREMENT_RE.pattern})",
        )
    title = doc.get("title", "")
    if not isinstance(title, str):
        raise f.error(
            lines["title"], "title", f"{quote(title)} is not text", "a one-line description of the requirement"
        )
    load = parse_load(f, doc.get("load"), lines.get("load", 1))
    items = doc.get("thresholds")
    if "thresholds" not in doc:
        raise f.error(doc.line, "thresholds", "missing", "a list of thresholds like '- metric: p95'")
    if not isinstance(items, LineSeq) or not items:
        raise f.error(
            lines["thresholds"],
            "thresholds",
            f"{quote(items)} is not a non-empty list",
            "a list of thresholds like '- metric: p95'",
        )
    thresholds: list[Threshold] = []
    seen: dict[tuple[Any, ...], str] = {}
    for index, (item, line) in enumerate(zip(items, items.item_lines)):
        t = _parse_item(f, item, line, index, requirement, load.resources)
        scope = (t.resource.query, t.resource.mountpoint, t.resource.aggregate) if t.resource else t.request
        identity = (t.metric, scope, t.regression is not None, t.latency)
        if identity in seen:
            raise f.error(
                line,
                f"thresholds[{index}]",
                f"{t.metric}{' for ' + quote(t.request) if t.request else ''} is "
                f"already checked by the item at {seen[identity]}",
                "one item per metric and request",
            )
        seen[identity] = t.source
        thresholds.append(t)
    notify = notify_spec.parse(f, doc["notify"], lines["notify"]) if "notify" in doc else ()
    plan = plan_settings.parse(f, doc.get("capacity"), lines.get("capacity", 1))
    plan_settings.check_headroom(f, plan, items, thresholds)
    return (
        ThresholdFile(
            f.path, requirement, title.strip(), load, tuple(thresholds), sha256, notify=notify, capacity=plan
        ),
        lines["requirement"],
    )


def load_threshold_file(path: str | os.PathLike[str]) -> ThresholdFile:
    """Read and check one threshold file; ConfigError with file:line on any problem."""
    return _load(path)[0]


def _load(path: str | os.PathLike[str]) -> tuple[ThresholdFile, int]:
    """The parsed file and the line of its ``requirement`` key."""
    f = FileErrors(os.fspath(path))
    try:
        with open(f.path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise f.error(1, "(file)", f"cannot read: {exc.strerror or exc}", "a readable YAML threshold file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise f.error(data[: exc.start].count(b"\n") + 1, "(file)", "not UTF-8 text", "a UTF-8 YAML file") from None
    doc, parsed = parse_fast(text)
    loader = LineLoader(text)  # a file libyaml rejects is read again here, for the messages the errors quote
    try:
        if not parsed:
            doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        source_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        hint = (
            " (YAML reads a value starting with '>' as a folded block)" if re.search(r"(:|-)\s+>", source_line) else ""
        )
        col = f" at column {mark.column + 1}" if mark else ""
        raise f.error(
            line, "(yaml)", f"{problem}{col}{hint}", 'valid YAML; quote conditions, like alert: ">500ms"'
        ) from None
    except yaml.YAMLError as exc:
        raise f.error(1, "(yaml)", " ".join(str(exc).split()), "valid YAML") from None
    finally:
        loader.dispose()
    return _parse_document(f, doc, hashlib.sha256(data).hexdigest())


def load_thresholds(path: str | os.PathLike[str]) -> dict[str, ThresholdFile]:
    """All threshold files of a directory (``*.yaml``/``*.yml``, sorted) or one file, keyed by requirement."""
    root = os.fspath(path)
    if os.path.isdir(root):
        names = sorted(
            n
            for n in os.listdir(root)
            if n.endswith((".yaml", ".yml")) and not n.startswith(".") and os.path.isfile(os.path.join(root, n))
        )
        if not names:
            raise ConfigError(
                f"{root}:1: (directory): no threshold files (*.yaml, *.yml); "
                "expected one YAML file per requirement, like REQ-PERF-001.yaml"
            )
        paths = [os.path.join(root, n) for n in names]
    else:
        paths = [root]
    out: dict[str, ThresholdFile] = {}
    for p in paths:
        tf, line = _load(p)
        if tf.requirement in out:
            raise FileErrors(tf.path).error(
                line,
                "requirement",
                f"{tf.requirement} is already defined in {out[tf.requirement].path}",
                "one threshold file per requirement",
            )
        out[tf.requirement] = tf
    return out


def required_percentiles(files: Mapping[str, ThresholdFile] | Iterable[ThresholdFile]) -> set[float]:
    """Every percentile (95.0, 99.9, ...) that some threshold needs, so analysis computes it."""
    values = files.values() if isinstance(files, Mapping) else files
    return {t.percentile for tf in values for t in tf.thresholds if t.percentile is not None}

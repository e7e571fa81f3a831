"""``loadgate check``: thresholds parse, scenarios import, and requirements trace both ways."""
from __future__ import annotations

import re

from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import REQUIREMENT_RE, load_thresholds
from loadgate.run.scenarios import load_catalog
from loadgate.sources import prometheus

# A tag that looks meant as a requirement but is not well-formed (req-perf-001, REQ_PERF_001, REQ-)
_LOOKS_LIKE_REQ = re.compile(r"^(req|REQ|Req)[-_ ]?|^[A-Za-z]+[-_]\d+$")


def check(scenarios: str, thresholds: str, prometheus: str | None = None, *,
          ask_prometheus: bool = False) -> tuple[bool, list[str]]:
    """(consistent?, report lines). Every problem is one line that says what, where and how to fix it.

    With ``ask_prometheus`` (``--prometheus``), every Prometheus resource query is also tried on the server.
    """
    lines: list[str] = []
    problems: list[str] = []
    try:
        files = load_thresholds(thresholds)
    except ConfigError as e:
        return False, [f"error: {e}"]
    try:
        catalog = load_catalog(scenarios)
    except ConfigError as e:
        return False, [f"error: {e}"]
    tagged = catalog.requirements()
    for req, tf in sorted(files.items()):
        tasks = catalog.tasks_for(req)
        if not tasks:
            problems.append(f"error: {tf.path}: requirement {req} has thresholds but no task in {scenarios} "
                            f"is tagged @tag(\"{req}\"); tag the tasks that provide its evidence")
            continue
        lines.append(f"{req}: {tf.title}")
        lines.append(f"  thresholds: {tf.path} ({len(tf.thresholds)})")
        for t in tasks:
            lines.append(f"  task: {t.file}:{t.line} {t.user_class}.{t.name.split('.')[-1]}")
    for req in sorted(tagged - set(files)):
        where = ", ".join(sorted({f"{t.file}:{t.line}" for t in catalog.tasks_for(req)}))
        problems.append(f"error: {where}: tag {req} has no threshold file; add {thresholds}/{req}.yaml "
                        "with 'requirement: " + req + "' and its thresholds")
    for t in catalog.tasks:
        for tag in t.tags:
            if not REQUIREMENT_RE.match(tag) and _LOOKS_LIKE_REQ.match(tag):
                problems.append(f"error: {t.file}:{t.line}: tag {tag!r} looks like a requirement ID but is not "
                                "one; expected the form REQ-PERF-001 (capitals, digits, dash-separated)")
    if ask_prometheus:
        problems.extend(check_prometheus(files, prometheus))
    ok = not problems
    lines.extend(problems)
    lines.append(f"{'ok' if ok else 'FAILED'}: {len(files)} threshold file(s), {len(catalog.files)} scenario "
                 f"file(s), {len(catalog.tasks)} task(s), {len(problems)} problem(s)")
    return ok, lines


def check_prometheus(files: dict, url_override: str | None) -> list[str]:
    """Problems of every Prometheus resource query, asked of the server now: bad PromQL, no series, several
    series without aggregate_series, an unreachable server (once per server). One line each, with file:line."""
    problems = []
    steps: dict[str, float | None] = {}  # per server: its scrape interval, None when it cannot be asked
    for tf in files.values():
        for t in tf.thresholds:
            q = t.resource
            if q is None or q.source != "prometheus":
                continue
            url = url_override or q.prometheus
            if not url:
                problems.append(f"error: {q.key}: load.resources.prometheus: missing; set the server's URL there "
                                "or pass --prometheus URL")
                continue
            if url not in steps:
                try:
                    steps[url] = prometheus.scrape_interval(url)
                except RunError as e:
                    steps[url] = None
                    problems.append(f"error: {q.key}: {e}; start it or pass --prometheus URL")
            if steps[url] is None:
                continue
            query = q.query or prometheus.builtin_query(q.metric, q.selector, q.mountpoint,
                                                        rate_window_s=4 * (q.step or steps[url] or 1.0))
            try:
                n = prometheus.instant_series(url, query)
            except ConfigError as e:
                problems.append(f"error: {q.key}: query: Prometheus rejected {query!r}: {e}; fix the PromQL")
                continue
            except RunError as e:
                problems.append(f"error: {q.key}: {e}; start it or pass --prometheus URL")
                continue
            if n == 0:
                problems.append(f"error: {q.key}: query {query!r} returns no series from {url}; check the metric "
                                "names and load.resources.selector")
            elif n > 1 and q.aggregate_series is None:
                problems.append(f"error: {q.key}: query {query!r} returns {n} series from {url}; add "
                                "aggregate_series: max|sum|mean or narrow load.resources.selector")
    return problems

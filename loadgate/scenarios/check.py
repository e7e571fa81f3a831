"""``loadgate check``: thresholds parse, scenarios import, and requirements trace both ways.

Problems print as plain lines (``error: FILE:LINE: what; how to fix``) or, with ``--format github``,
as GitHub Actions workflow commands (``::error file=FILE,line=LINE::what``) that the checks UI shows
on the line of the file in a pull request.
"""

from __future__ import annotations

import os

import math
import re
from dataclasses import dataclass

from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import REQUIREMENT_RE, load_thresholds
from loadgate.shared.live_rules import RULES_PER_TICK, rules_from_thresholds
from loadgate.notify.targets import ENV_TARGETS, check_warnings, cli_entries
from loadgate.scenarios.arrival_check import arrival_problems
from loadgate.scenarios.catalog import check_latency, load_catalog
from loadgate.sources import prometheus
from loadgate.trace.render import escape_data, escape_property

FORMATS = ("plain", "github")
MANY_ALERTS = 1_000  # alert thresholds above which check warns: the live view needs over 5 ticks to see each

# A tag that looks meant as a requirement but is not well-formed (req-perf-001, REQ_PERF_001, REQ-)
_LOOKS_LIKE_REQ = re.compile(r"^(req|REQ|Req)[-_ ]?|^[A-Za-z]+[-_]\d+$")
# "path/to/file.yaml:12: rest" or "path/to/file.py: rest", as every loadgate ConfigError starts
_LOCATION = re.compile(r"^(?P<file>[^\s:,][^:,]*?\.(?:ya?ml|py))(?::(?P<line>\d+))?: (?P<message>.+)$", re.S)


@dataclass(frozen=True)
class Problem:
    """One inconsistency: where it is (when known) and the message that says how to fix it."""

    message: str
    file: str | None = None
    line: int | None = None

    @classmethod
    def from_error(cls, error: ConfigError) -> "Problem":
        """A ConfigError's text, with the file and line it starts with taken apart."""
        m = _LOCATION.match(str(error))
        if not m:
            return cls(str(error))
        return cls(m["message"], m["file"], int(m["line"]) if m["line"] else None)

    def plain(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        return f"error: {where}{self.message}"

    def github(self) -> str:
        """A GitHub Actions ``::error`` command, escaped as the runner expects."""
        props = []
        if self.file:
            props.append(f"file={escape_property(self.file)}")
            if self.line:
                props.append(f"line={self.line}")
        return (
            f"::error {','.join(props)}::{escape_data(self.message)}"
            if props
            else f"::error::{escape_data(self.message)}"
        )


def _line_of(path: str, key: str) -> int | None:
    """The line where a top-level ``key:`` starts in a YAML file (for annotations)."""
    try:
        with open(path, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                if text.startswith(f"{key}:"):
                    return n
    except OSError:
        pass
    return None


def _threshold_file_for(thresholds: str, req: str) -> str:
    """Where a new requirement's threshold file goes: in the --thresholds folder, or beside the one file."""
    folder = thresholds if os.path.isdir(thresholds) else (os.path.dirname(thresholds) or ".")
    return os.path.join(folder, f"{req}.yaml")


# Over the size/complexity limit (noqa): one branch per kind of problem reported.
def find_problems(  # noqa: C901
    scenarios: str,
    thresholds: str,
    prometheus_url: str | None = None,
    *,
    ask_prometheus: bool = False,
) -> tuple[list[str], list[Problem], str | None]:
    """(report lines, problems, closing count line or None when nothing could be loaded).

    Every problem says what, where and how to fix it. With ``ask_prometheus`` (``--prometheus``), every
    Prometheus resource query is also tried on the server."""
    lines: list[str] = []
    problems: list[Problem] = []
    try:
        files = load_thresholds(thresholds)
        catalog = load_catalog(scenarios)
    except ConfigError as e:
        return [], [Problem.from_error(e)], None
    tagged = catalog.requirements()
    for req, tf in sorted(files.items()):
        tasks = catalog.tasks_for(req)
        if not tasks and tf.load.arrival is None:  # with an arrival shape: said below, at its line
            problems.append(
                Problem(
                    f"requirement {req} has thresholds but no task in {scenarios} is tagged "
                    f'@tag("{req}"); tag the tasks that provide its evidence',
                    tf.path,
                    _line_of(tf.path, "requirement"),
                )
            )
        if not tasks:
            continue
        lines.append(f"{req}: {tf.title}")
        lines.append(f"  thresholds: {tf.path} ({len(tf.thresholds)})")
        for t in tasks:
            lines.append(f"  task: {t.file}:{t.line} {t.user_class}.{t.name.split('.')[-1]}")
    for req in sorted(tagged - set(files)):
        where = sorted({(t.file, t.line) for t in catalog.tasks_for(req)})
        also = "".join(f", {f}:{n}" for f, n in where[1:])
        problems.append(
            Problem(
                f"tag {req} has no threshold file{' (also tagged at ' + also[2:] + ')' if also else ''}; "
                f"add {_threshold_file_for(thresholds, req)} with 'requirement: {req}' and its thresholds",
                where[0][0],
                where[0][1],
            )
        )
    for t in catalog.tasks:
        for tag in t.tags:
            if not REQUIREMENT_RE.match(tag) and _LOOKS_LIKE_REQ.match(tag):
                problems.append(
                    Problem(
                        f"tag {tag!r} looks like a requirement ID but is not one; expected the "
                        "form REQ-PERF-001 (capitals, digits, dash-separated)",
                        t.file,
                        t.line,
                    )
                )
    problems.extend(Problem(message, file, line) for message, file, line in arrival_problems(files, catalog, scenarios))
    for tf in files.values():
        try:
            check_latency(catalog, [tf])
        except ConfigError as e:
            problems.append(Problem.from_error(e))
    if ask_prometheus:
        problems.extend(
            Problem.from_error(ConfigError(text.removeprefix("error: ")))
            for text in check_prometheus(files, prometheus_url)
        )
    try:
        cli_entries(None)  # $LOADGATE_NOTIFY, as a run would read it
    except ConfigError as e:
        problems.append(Problem(f"${ENV_TARGETS}: {e}"))
    # a warning: the run works, only not as its author meant
    warnings = _trap_warnings(catalog, files) + count_warnings(files) + check_warnings(files.values())
    lines.extend(warnings)
    closing = (
        f"{'FAILED' if problems else 'ok'}: {len(files)} threshold file(s), {len(catalog.files)} scenario "
        f"file(s), {len(catalog.tasks)} task(s), {len(problems)} problem(s)"
        + (f", {len(warnings)} warning(s)" if warnings else "")
    )
    return lines, problems, closing


def check(
    scenarios: str,
    thresholds: str,
    prometheus_url: str | None = None,
    *,
    ask_prometheus: bool = False,
    fmt: str = "plain",
) -> tuple[bool, list[str]]:
    """(consistent?, output lines), problems in ``fmt`` (``plain`` or ``github``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    lines, problems, closing = find_problems(scenarios, thresholds, prometheus_url, ask_prometheus=ask_prometheus)
    render = Problem.github if fmt == "github" else Problem.plain
    return not problems, [*lines, *(render(p) for p in problems), *([closing] if closing else [])]


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
                problems.append(
                    f"error: {q.key}: load.resources.prometheus: missing; set the server's URL there "
                    "or pass --prometheus URL"
                )
                continue
            if url not in steps:
                try:
                    steps[url] = prometheus.scrape_interval(url)
                except RunError as e:
                    steps[url] = None
                    problems.append(f"error: {q.key}: {e}; start it or pass --prometheus URL")
            if steps[url] is None:
                continue
            query = q.query or prometheus.builtin_query(
                q.metric, q.selector, q.mountpoint, rate_window_s=4 * (q.step or steps[url] or 1.0)
            )
            try:
                n = prometheus.instant_series(url, query)
            except ConfigError as e:
                problems.append(f"error: {q.key}: query: Prometheus rejected {query!r}: {e}; fix the PromQL")
                continue
            except RunError as e:
                problems.append(f"error: {q.key}: {e}; start it or pass --prometheus URL")
                continue
            if n == 0:
                problems.append(
                    f"error: {q.key}: query {query!r} returns no series from {url}; check the metric "
                    "names and load.resources.selector"
                )
            elif n > 1 and q.aggregate_series is None:
                problems.append(
                    f"error: {q.key}: query {query!r} returns {n} series from {url}; add "
                    "aggregate_series: max|sum|mean or narrow load.resources.selector"
                )
    return problems


def count_warnings(files: dict) -> list[str]:
    """A ``warning:`` line when the thresholds' alerts are more than the live view comes round to in its window."""
    alerts = len(rules_from_thresholds(files.values()))
    if alerts <= MANY_ALERTS:
        return []
    every = math.ceil(alerts / RULES_PER_TICK)
    return [
        f"warning: {alerts:,} thresholds have an alert level, more than {MANY_ALERTS:,}: the live view evaluates "
        f"at most {RULES_PER_TICK} a tick (each second with abort_on_fail, else every 2 s; those that abort "
        f"first), so with all their requests being sent it comes round to each only every {every} ticks (up to "
        f"{2 * every} s; the default window is 10 s); junit.xml, "
        "summary.md and report.html list the most pressing thresholds only (verdict.json has them all). The "
        "gate checks them all; keep per-request alerts for the requests that need one"
    ]


def _trap_warnings(catalog, files) -> list[str]:
    """``warning:`` lines for TaskSets that ``select: tasks`` turns into traps, each once."""
    from loadgate.scenarios.traps import trap_warnings

    out: list[str] = []
    for req, tf in sorted(files.items()):
        if (tf.load.select or "tasks") == "tasks" and catalog.tasks_for(req):
            out += [
                f"warning: {w}" for w in trap_warnings(catalog, [req], {req: tf.path}) if f"warning: {w}" not in out
            ]
    return out

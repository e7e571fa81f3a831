"""``loadgate check``: thresholds parse, scenarios import, and requirements trace both ways."""
from __future__ import annotations

import re

from loadgate.errors import ConfigError
from loadgate.gate.thresholds import REQUIREMENT_RE, load_thresholds
from loadgate.run.scenarios import load_catalog

# A tag that looks meant as a requirement but is not well-formed (req-perf-001, REQ_PERF_001, REQ-)
_LOOKS_LIKE_REQ = re.compile(r"^(req|REQ|Req)[-_ ]?|^[A-Za-z]+[-_]\d+$")


def check(scenarios: str, thresholds: str) -> tuple[bool, list[str]]:
    """(consistent?, report lines). Every problem is one line that says what, where and how to fix it."""
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
    ok = not problems
    lines.extend(problems)
    warnings = _trap_warnings(catalog, files)  # a warning: the run works, only not as its author meant
    lines.extend(warnings)
    lines.append(f"{'ok' if ok else 'FAILED'}: {len(files)} threshold file(s), {len(catalog.files)} scenario "
                 f"file(s), {len(catalog.tasks)} task(s), {len(problems)} problem(s)"
                 + (f", {len(warnings)} warning(s)" if warnings else ""))
    return ok, lines


def _trap_warnings(catalog, files) -> list[str]:
    """``warning:`` lines for TaskSets that ``select: tasks`` turns into traps, each once."""
    from loadgate.run.traps import trap_warnings

    out: list[str] = []
    for req, tf in sorted(files.items()):
        if (tf.load.select or "tasks") == "tasks" and catalog.tasks_for(req):
            out += [f"warning: {w}" for w in trap_warnings(catalog, [req], {req: tf.path}) if f"warning: {w}" not in out]
    return out

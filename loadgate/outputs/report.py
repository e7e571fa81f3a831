"""report.html: one self-contained file that answers "did this build meet the requirement, and where does it hurt?".

Rendered with Jinja2 (autoescape, StrictUndefined) from the run directory alone: ``verdict.json``,
``summary.json``, ``run.json``, ``comparison.json`` when the run has a baseline and, for the charts and
the error table, ``samples.parquet`` (through :mod:`loadgate.outputs.charts`). The trend of the last runs comes
from ``history.sqlite`` in the ``--out`` folder when it can be read (:mod:`loadgate.outputs.trend`), and is
left out, with a note, when it cannot. The charting library (uPlot, MIT) is inlined once; the chart data is
one JSON block escaped so that no string in it can end the script or open markup. A Content Security
Policy with a per-render nonce forbids every network fetch and any script but the report's own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from loadgate._version import __version__
from loadgate.analysis.summary_doc import SummaryDoc, read_summary
from loadgate.data import rundir
from loadgate.data.manifest import Sealer
from loadgate.data.run_doc import RunDoc, read_run
from loadgate.gate.verdict_doc import VerdictDoc, read_verdict
from loadgate.data.signing import SigningKey
from loadgate.data.resources import read_rows as resource_rows
from loadgate.units import format_duration
from loadgate.outputs.report_filters import FILTERS, dur, num, utc
from loadgate.outputs.shown import REPORT_ROWS, listed, more_line

MAX_REQUEST_ROWS = 500  # per-request table rows; the rest are counted, and all are in summary.json
MAX_COMPARISON_ROWS = 400  # comparison rows; requirement-wide and changed rows first, all in comparison.json
COMPARE_SCHEMA = "loadgate.compare/1"
_STATUS_ORDER = ("fail", "inconclusive", "warn", "pass", "skipped")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loadgate.outputs", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def script_json(data: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``</script>``, ``<!--`` and U+2028 stay inert."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return Markup(text)


def _asset(name: str) -> Markup:
    """An asset file inlined verbatim; refuses one that could end its own element early."""
    text = resources.files("loadgate.outputs").joinpath("assets").joinpath(name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower() or "<!--" in text:
        raise RuntimeError(f"loadgate/outputs/assets/{name} contains a closing tag or comment opener; cannot inline it")
    return Markup(text)


def _worst(statuses: list[str]) -> str:
    for status in _STATUS_ORDER:
        if status in statuses:
            return status
    return "inconclusive"


def _trace(verdict: VerdictDoc, run: RunDoc) -> list[dict[str, Any]]:
    """Traceability: requirement -> title, scenario tasks -> thresholds with levels, value, status."""
    thresholds = verdict["thresholds"]
    tasks = run.get("tasks")
    titles = run.get("titles") or {}
    reqs = list(dict.fromkeys([*(run.get("requirements") or []), *(t["requirement"] for t in thresholds)]))
    out = []
    for req in reqs:
        mine = [t for t in thresholds if t["requirement"] == req]
        shown, rest = listed(mine, REPORT_ROWS)
        out.append(
            {
                "id": req,
                "title": titles.get(req) or "",
                "tasks": None if tasks is None else list(tasks.get(req) or []),
                "thresholds": shown,
                "more": more_line(rest) if rest else None,
                "status": _worst([t["status"] for t in mine]) if mine else "inconclusive",
                "changes": _changes_of(verdict.get("changes_since_baseline"), req),
            }
        )
    return out


def _changes_of(changes: Mapping[str, Any] | None, req: str) -> dict[str, Any] | None:
    """The traceability table's "changes since baseline" cell: the commits since it that reference ``req``."""
    if not isinstance(changes, Mapping):
        return None
    commits = [c for c in changes.get("commits") or () if isinstance(c, Mapping)]
    omitted = changes.get("omitted")
    omitted = omitted if isinstance(omitted, int) else 0
    return {
        "reason": changes.get("reason"),
        "total": len(commits) + omitted,
        "referencing": [c for c in commits if req in (c.get("requirements") or ())],
    }


def _evidence(run: RunDoc, seal: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The manifest's digest, its signature and the audit log (``seal``: the manifest being written with this
    report; None: the one run.json holds, e.g. for a copy rendered with ``loadgate report -o``)."""
    manifest: Mapping[str, Any] = run.get("manifest") or {}
    manifest = manifest if isinstance(manifest, Mapping) else {}
    evidence = (seal or {}).get("evidence") or manifest.get("evidence")
    signed_by = (seal or {}).get("signed_by") if seal else (manifest.get("signature") or {}).get("key_id")
    rows = [
        (
            "Manifest digest",
            f"sha256 {evidence} of every file of the run directory but this report "
            "('loadgate verify RUN_DIR' checks it)"
            if evidence
            else "none: the run directory has no manifest",
        ),
        (
            "Signed",
            f"yes, Ed25519 key {signed_by}"
            if signed_by
            else "no (sign with --signing-key FILE or $LOADGATE_SIGNING_KEY)",
        ),
    ]
    for entry in (seal or {}).get("audit") or run.get("audit") or []:
        found = ", ".join(f"{k} {v}" for k, v in sorted((entry.get("found") or {}).items()))
        rows.append(
            (
                "Written by",
                f"{entry.get('command')} ({entry.get('by')}, {utc(entry.get('at'))})"
                + (f"; found before: {found}" if found else ""),
            )
        )
    auth = run.get("worker_auth")
    if auth:
        rows.append(
            (
                "Worker channel",
                {
                    "curve": "authenticated and encrypted (CURVE, shared worker key)",
                    "insecure": "NOT authenticated (--insecure-workers)",
                    "loopback": "loopback only, not authenticated",
                }.get(auth, str(auth)),
            )
        )
    for w in run.get("refused_workers") or []:
        rows.append(("Refused worker", f"{w.get('address')}: {w.get('reason')} ({w.get('attempts')} attempts)"))
    return rows


def _metadata(run: RunDoc, summary: SummaryDoc, seal: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """Audit facts as (label, text) rows; strings only, escaped by the template."""
    win: Mapping[str, Any] = summary.get("window") or {}
    git = run.get("git") or {}
    versions = run.get("versions") or {}
    start, end, duration = run.get("start"), run.get("end"), run.get("duration")
    rows = [
        ("Requirements", ", ".join(run.get("requirements") or [])),
        ("Start", utc(start)),
        ("Ramp-up done", utc(run.get("ramp_up_done"))),
        ("End", utc(end)),
        ("Duration", dur(end - start) if start and end else "-"),
        (
            "Analysis window",
            f"{utc(win.get('start'))} – {utc(win.get('end'))} ({num(win.get('seconds'))} s)" if win else "-",
        ),
        ("Users", str(run.get("users", "-"))),
        ("Users reached", str(run.get("users_reached", "-"))),
        ("Spawn rate", f"{run['spawn_rate']:g} users/s" if run.get("spawn_rate") is not None else "-"),
        ("Time at full load", format_duration(duration) if duration is not None else "-"),
        ("Warmup", format_duration(run["warmup"]) if run.get("warmup") is not None else "-"),
        ("Host", str(run.get("host") or "-") + (" (embedded demo target)" if run.get("embedded_target") else "")),
        ("Load generators", str(run.get("workers", "-"))),
        (
            "Samples recorded",
            str(run.get("samples", "-"))
            + (f" of {run['locust_requests']} counted by Locust" if run.get("locust_requests") is not None else ""),
        ),
        ("Stop reason", str(run.get("stop_reason") or "-")),
        (
            "Git commit",
            (git.get("commit") or "-") + (" (uncommitted changes)" if git.get("dirty") else "")
            if git
            else "not a git repository",
        ),
        ("Versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)),
        ("Command line", " ".join(run.get("command_line") or []) or "-"),
        ("Working directory", str(run.get("cwd") or "-")),
    ]
    rows += _imported(run.get("source"))
    rows += [(f"Scenario {path}", f"sha256 {digest}") for path, digest in (run.get("scenario_files") or {}).items()]
    rows += [(f"Thresholds {path}", f"sha256 {digest}") for path, digest in (run.get("threshold_files") or {}).items()]
    return rows + _evidence(run, seal)


def _imported(source: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Where an imported run's samples came from: the tool, its version, the file and its SHA-256."""
    if not isinstance(source, Mapping):
        return []
    tool = f"{source.get('tool')} {source.get('version') or '(version not recorded; --tool-version)'}"
    return [
        ("Samples imported from", f"{tool}: {source.get('file')} ({source.get('format')})"),
        (
            "Imported file",
            f"sha256 {source.get('sha256')}, {source.get('bytes')} bytes, {source.get('lines')} lines; "
            f"requirements from {source.get('requirements_from')}",
        ),
    ]


def load_comparison(run_dir: str) -> tuple[dict[str, Any] | None, str | None]:
    """``comparison.json`` of the run (None when it has no baseline), or None and why it cannot be shown."""
    from loadgate.history.baseline import COMPARISON

    path = os.path.join(run_dir, COMPARISON)
    if not os.path.exists(path):
        return None, None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"{COMPARISON} cannot be read ({e})"
    if not isinstance(doc, dict) or doc.get("schema") != COMPARE_SCHEMA or not isinstance(doc.get("requests"), list):
        return None, f"{COMPARISON} is not a {COMPARE_SCHEMA} document"
    return doc, None


def _comparison(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison as the template shows it: rows (requirement-wide and changed ones kept first past the cap)."""
    rows = [r for r in doc["requests"] if isinstance(r, Mapping)]
    if len(rows) > MAX_COMPARISON_ROWS:
        first = [r for r in rows if r.get("request_type") is None or r.get("status") != "unchanged"]
        rest = [r for r in rows if not (r.get("request_type") is None or r.get("status") != "unchanged")]
        keep = {id(r) for r in (first + rest)[:MAX_COMPARISON_ROWS]}
        shown = [r for r in rows if id(r) in keep]
    else:
        shown = rows
    tol: Mapping[str, Any] = doc.get("tolerance") or {}
    tol = tol if isinstance(tol, Mapping) else {}
    latency, errors = tol.get("latency", 0.10), tol.get("error_rate", 0.005)
    count = {s: sum(1 for r in rows if r.get("status") == s) for s in ("regression", "improvement", "unchanged")}
    return {
        "baseline": str(doc.get("baseline") or "?"),
        "candidate": str(doc.get("candidate") or "?"),
        "verdict": str(doc.get("verdict") or ""),
        "rows": shown,
        "hidden": len(rows) - len(shown),
        "count": count,
        "total": len(rows),
        "unmatched": [u for u in doc.get("unmatched") or () if isinstance(u, Mapping)],
        "tolerance": f"latency percentiles +{num(latency * 100, 3).rstrip('0').rstrip('.')}% (relative change), "
        f"error rate +{num(errors * 100, 3).rstrip('0').rstrip('.')} percentage points",
    }


def render_report(
    *,
    verdict: VerdictDoc,
    summary: SummaryDoc,
    run: RunDoc,
    charts: Mapping[str, Any] | None = None,
    errors: Mapping[str, Any] | None = None,
    note: str | None = None,
    comparison: Mapping[str, Any] | None = None,
    comparison_note: str | None = None,
    trend: list[dict[str, Any]] | None = None,
    trend_note: str | None = None,
    seal: Mapping[str, Any] | None = None,
    capacity: Mapping[str, Any] | None = None,
) -> str:
    """The report as one string with no external resources.

    ``charts`` and ``errors`` come from :mod:`loadgate.outputs.charts` (None: not available, ``note`` says why);
    ``comparison`` is the run's ``loadgate.compare/1`` document (None: no baseline); ``trend`` comes from
    :func:`loadgate.outputs.trend.load_trend` (None: not looked up); ``capacity`` is a ``loadgate capacity``
    run's capacity.json (None: not a capacity run).
    """
    from loadgate.outputs.plan_chart import plan_chart
    from loadgate.outputs.trend import LIMIT as TREND_LIMIT
    from loadgate.outputs.trend import chart_count

    requests = list(summary.get("requests") or [])
    busiest = sorted(requests, key=lambda e: -int(e.get("requests") or 0))[:MAX_REQUEST_ROWS]
    keep = {id(e) for e in busiest}
    shown = [e for e in requests if id(e) in keep]  # summary order (type, name), busiest only
    trend_charts = chart_count(trend or [])
    steps = _capacity_chart(capacity, verdict) if capacity else None
    plan = plan_chart((capacity or {}).get("planning"))
    data = (
        {**(charts or {}), "trend": trend or [], "capacity": steps, "plan": plan}
        if charts or trend_charts or steps
        else None
    )
    context = {
        "verdict": verdict,
        "summary": summary,
        "run": run,
        "trace": _trace(verdict, run),
        "changes": verdict.get("changes_since_baseline"),
        "titles": run.get("titles") or {},
        "requests": shown,
        "hidden_requests": len(requests) - len(shown),
        "overall": summary.get("overall") or {},
        "metadata": _metadata(run, summary, seal),
        "charts": charts,
        "errors": errors,
        "note": note,
        "version": __version__,
        "comparison": _comparison(comparison) if comparison else None,
        "comparison_note": comparison_note,
        "trend": trend,
        "trend_note": trend_note,
        "trend_limit": TREND_LIMIT,
        "expected": (
            (5 + bool(charts.get("cpu")) + bool(charts.get("resources")) + len(charts.get("arrival") or ()))
            if charts
            else 0
        )
        + trend_charts
        + (2 if steps else 0)
        + (1 if steps and plan else 0),
        "capacity": capacity,
        "plan": (capacity or {}).get("planning"),
        "step": _best_step(capacity),
        "plan_chart": bool(steps and plan),
        "capacity_js": _asset("capacity.js"),
        "t0": (charts or {}).get("t0") or run.get("start") or 0.0,
        "generated": utc(dt.datetime.now(dt.timezone.utc).timestamp()),
        "nonce": secrets.token_urlsafe(18),
        "data": script_json(data) if data else None,
        "uplot_js": _asset("uPlot.iife.min.js") if data else None,
        "uplot_css": _asset("uPlot.min.css"),
        "report_js": _asset("report.js"),
        "trend_js": _asset("trend.js"),
    }
    return _env().get_template("report.html.j2").render(**context)


def build_report(
    run_dir: str, *, verdict: VerdictDoc, summary: SummaryDoc, run: RunDoc, seal: Mapping[str, Any] | None = None
) -> str:
    """The report of ``run_dir``: JSON documents as given, charts and errors from its samples, trend from history."""
    from loadgate.outputs import charts as ch
    from loadgate.outputs.trend import load_trend

    table, note = ch.load_samples(os.path.join(run_dir, rundir.SAMPLES))
    data = errs = None
    if table is not None:
        data = ch.chart_data(table, run, summary, verdict)
        data["resources"] = ch.resource_series(resource_rows(run_dir), data["t0"])  # the target's CPU, memory, disk
        errs = ch.errors(table, summary.get("window"))
        del table
    comparison, comparison_note = load_comparison(run_dir)
    trend, trend_note = load_trend(run_dir, run, verdict)
    capacity = None
    if os.path.exists(os.path.join(run_dir, rundir.CAPACITY)):
        capacity = rundir.read_json(run_dir, rundir.CAPACITY)
    return render_report(
        verdict=verdict,
        summary=summary,
        run=run,
        charts=data,
        errors=errs,
        note=note,
        comparison=comparison,
        comparison_note=comparison_note,
        trend=trend,
        trend_note=trend_note,
        seal=seal,
        capacity=capacity,
    )


def _capacity_chart(capacity: Mapping[str, Any], verdict: VerdictDoc) -> dict[str, Any] | None:
    """Throughput and latency against users, one point per step (in user order), with the alert levels in ms."""
    from loadgate.outputs.charts import threshold_levels

    if capacity.get("quantity") == "rate":  # a search over arrival rate: the steps against the rate offered
        knee = capacity.get("knee")
        chart = _capacity_chart(
            {
                **capacity,
                "max_users": capacity.get("max_rate"),
                "knee": knee and {**knee, "users": knee["rate"]},
                "steps": [{**s, "users": s.get("rate")} for s in capacity.get("steps") or ()],
                "quantity": None,
            },
            verdict,
        )
        return None if chart is None else {**chart, "x_label": "iterations/s offered"}
    steps = sorted((s for s in capacity.get("steps") or () if s.get("users") is not None), key=lambda s: s["users"])
    if not steps:
        return None
    timed = [t for t in verdict["thresholds"] if t["unit"] == "ms"]
    levels = [lv for lv in threshold_levels(timed) if lv["level"] == "alert"]
    return {
        "users": [s["users"] for s in steps],
        "throughput": [s.get("throughput") for s in steps],
        "p50": [s.get("p50") for s in steps],
        "p95": [s.get("p95") for s in steps],
        "p99": [s.get("p99") for s in steps],
        "status": [s.get("status") for s in steps],
        "knee": capacity.get("knee"),
        "max_users": capacity.get("max_users"),
        "levels": levels,
    }


def _best_step(capacity: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The highest passing step of a capacity run: the figures its top tiles show."""
    if not capacity:
        return None
    steps = capacity.get("steps") or ()
    key = "rate" if capacity.get("quantity") == "rate" else "users"
    return next((s for s in steps if s.get(key) == capacity.get(f"max_{key}") and s.get("status") == "pass"), None)


def _write(path: str, html: str) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
        os.replace(tmp, path)
    except BaseException:  # a full disk, a signal: no temp file left among the run's files
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_report(
    path: str,
    *,
    verdict: VerdictDoc,
    summary: SummaryDoc,
    run: RunDoc,
    run_dir: str | None = None,
    seal: Mapping[str, Any] | None = None,
) -> None:
    """Write report.html; samples are read from ``run_dir`` (default: the folder of ``path``)."""
    run_dir = os.path.dirname(os.path.abspath(path)) if run_dir is None else run_dir
    _write(path, build_report(run_dir, verdict=verdict, summary=summary, run=run, seal=seal))


def write_run_report(
    run_dir: str, out: str | None = None, *, command: Sequence[str] = (), key: SigningKey | None = None
) -> str:
    """Re-render a run directory's report from its files alone (``loadgate report``); returns the path.

    Written into the run directory as its report.html, it re-seals the manifest and logs ``command``;
    written elsewhere, the run directory is left as it is."""
    rundir.check_run_dir(run_dir)
    out = out or os.path.join(run_dir, rundir.REPORT)
    own = os.path.abspath(out) == os.path.abspath(os.path.join(run_dir, rundir.REPORT))
    verdict, summary = read_verdict(run_dir), read_summary(run_dir)
    check_samples(os.path.join(run_dir, rundir.SAMPLES))  # damaged: an error naming it, and nothing rewritten
    sealer = Sealer(run_dir, command or ["loadgate", "report", run_dir], key) if own else None
    try:
        seal = sealer.stage([rundir.REPORT]) if sealer else None
        write_report(out, verdict=verdict, summary=summary, run=read_run(run_dir), run_dir=run_dir, seal=seal)
    except BaseException:
        if sealer:
            sealer.abort()
        raise
    if sealer:
        sealer.close()
    return out


def check_samples(path: str) -> None:
    """ConfigError (exit 2) naming ``path`` when the samples file is there but cannot be read: a report that
    quietly drew no charts would re-seal a run whose evidence is damaged."""
    if not os.path.exists(path):
        return  # the report says it is missing
    from loadgate.data.open_samples import open_samples

    open_samples(path, ["timestamp"])  # Parquet: its footer and schema (pages are checked as the charts read them)

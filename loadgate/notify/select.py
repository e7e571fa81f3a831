"""Which of a target's ``on:`` outcomes hold for a run: the verdict's, and recovered, regressed, resources.

- ``fail`` ``warn`` ``inconclusive`` ``pass``: the outcome of the target's requirements (a threshold file's
  entry: its own requirement; ``--notify``: the whole run's verdict). A requirement's outcome is the worst
  status of its thresholds (warn counts as fail under ``--strict``); a run-level problem (interrupted,
  generator saturated, too few requests) makes every requirement at least inconclusive, and an
  interrupted run is inconclusive whatever its thresholds say.
- ``recovered``: the outcome is pass or warn (the gate lets it through) and the previous record of the
  same requirement in ``history.sqlite`` (a run or a gate re-evaluation) was fail or inconclusive.
- ``regressed``: the baseline comparison (``comparison.json``) found a regression in the scope, or a
  ``regression:`` threshold of it failed.
- ``resources``: a resource threshold (cpu, memory, disk, promql) of the scope is at warn or fail.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from loadgate.data.run_doc import RunDoc
from loadgate.errors import ConfigError
from loadgate.gate.status import SEVERITY, Status
from loadgate.gate.verdict_doc import ThresholdDoc, VerdictDoc
from loadgate.history import store as history

_RANK = SEVERITY
PASSING = (Status.PASS, Status.WARN)
BREACHED = (Status.WARN, Status.FAIL)


def worst(statuses: Iterable[str]) -> str | None:
    ranked = [s for s in statuses if s in _RANK]
    return max(ranked, key=lambda s: _RANK[Status(s)]) if ranked else None


def _status(t: ThresholdDoc, strict: bool) -> str:
    s = t["status"]
    return Status.FAIL if strict and s == Status.WARN else s


def requirement_of(entry: Mapping[str, Any]) -> list[str]:
    """A threshold's or comparison row's requirements (a shared request names several, comma-joined)."""
    return [r.strip() for r in str(entry.get("requirement") or "").split(",") if r.strip()]


def outcomes(verdict: VerdictDoc, run: RunDoc) -> dict[str, str]:
    """Each requirement of the run -> its outcome (see the module's docstring)."""
    reqs = [str(r) for r in run.get("requirements") or ()]
    overall = verdict["verdict"]
    if len(reqs) <= 1 or run.get("interrupted"):
        return {r: overall for r in reqs}
    strict = verdict["strict"]
    out = {}
    for r in reqs:
        mine = [_status(t, strict) for t in verdict["thresholds"] if r in requirement_of(t)]
        out[r] = worst(mine) or overall
    all_thresholds = worst(out.values()) or "pass"
    if overall != all_thresholds or run.get("problems"):  # a run-level cause decided: it holds for all
        floor = overall if overall != all_thresholds else "inconclusive"
        out = {r: worst([o, floor]) or floor for r, o in out.items()}
    return out


def previous_outcomes(
    run_dir: str, requirements: Sequence[str], say: Callable[[str], None], *, recorded: bool
) -> dict[str, str]:
    """Each requirement -> its outcome in the newest history record before this verdict's: the newest of all
    while the verdict is not recorded yet (run, gate), else the newest before the run's own latest record
    (``loadgate notify``). Missing: no earlier record, or no history."""
    db = history.db_of_run(run_dir)
    if not os.path.isfile(db):
        return {}
    run_id = os.path.basename(os.path.normpath(run_dir))
    try:
        conn = history.open_existing(db)
    except ConfigError as e:
        say(f"loadgate: warning: cannot read the history for 'recovered' ({e})")
        return {}
    try:
        mine = conn.execute("SELECT MAX(seq) FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0] if recorded else None
        out = {}
        for req in requirements:
            row = conn.execute(
                "SELECT r.seq, r.verdict, r.strict, r.requirements FROM runs r JOIN run_requirements q ON q.seq = r.seq"
                " WHERE q.requirement = ? AND r.seq < ? ORDER BY r.seq DESC LIMIT 1",
                (req, mine if mine is not None else 1 << 62),
            ).fetchone()
            if row is None:
                continue
            seq, verdict, strict, reqs = row
            statuses = [
                ("fail" if strict and s == "warn" else s)
                for (s,) in conn.execute("SELECT status FROM thresholds WHERE seq = ? AND requirement = ?", (seq, req))
            ]
            single = [r for r in str(reqs).split(",") if r] == [req]
            out[req] = verdict if single else (worst(statuses) or verdict)
        return out
    except sqlite3.Error as e:
        say(f"loadgate: warning: cannot read the history for 'recovered' ({e})")
        return {}
    finally:
        conn.close()


def regressed(scope: Sequence[str], verdict: VerdictDoc, comparison: Mapping[str, Any] | None) -> bool:
    rows = (comparison or {}).get("requests") or ()
    if any(r.get("status") == "regression" and set(requirement_of(r)) & set(scope) for r in rows):
        return True
    return any(
        t.get("regression") and t["status"] in BREACHED and set(requirement_of(t)) & set(scope)
        for t in verdict["thresholds"]
    )


def resources_breached(scope: Sequence[str], verdict: VerdictDoc) -> list[ThresholdDoc]:
    return [
        t
        for t in verdict["thresholds"]
        if t.get("resource_source") and t["status"] in BREACHED and set(requirement_of(t)) & set(scope)
    ]


def holding(
    on: Sequence[str],
    scope: Sequence[str],
    whole_run: bool,
    verdict: VerdictDoc,
    run: RunDoc,
    comparison: Mapping[str, Any] | None,
    mine: Mapping[str, str],
    before: Mapping[str, str],
) -> list[str]:
    """The words of ``on`` that hold for a target covering ``scope`` (every requirement when ``whole_run``)."""
    outcome = verdict["verdict"] if whole_run else worst(mine.get(r, "") for r in scope) or "inconclusive"
    holds = {outcome}
    passing = [r for r in scope if mine.get(r) in PASSING]
    if outcome in PASSING and any(before.get(r) in ("fail", "inconclusive") for r in passing):
        holds.add("recovered")
    if regressed(scope, verdict, comparison):
        holds.add("regressed")
    if resources_breached(scope, verdict):
        holds.add("resources")
    return [w for w in on if w in holds]

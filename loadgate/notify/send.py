"""Plan the notifications of a gated run, deliver them, print and record the outcome in run.json.

Called by the CLI process only, once the verdict is written: by ``loadgate run`` and ``loadgate gate``
before the run directory is sealed (so run.json's record is covered by the manifest), and by
``loadgate notify RUN_DIR``, which re-seals. A notification that fails is a printed warning and a record;
it never raises and never changes the verdict.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from loadgate.analysis.summary_doc import read_summary
from loadgate.data import rundir
from loadgate.data.manifest import Sealer
from loadgate.data.run_doc import RunDoc, read_run, write_run
from loadgate.data.signing import SigningKey
from loadgate.errors import LoadgateError
from loadgate.gate.notify_spec import NotifyEntry
from loadgate.gate.thresholds import ThresholdFile
from loadgate.gate.verdict_doc import VerdictDoc, read_verdict
from loadgate.history.baseline import COMPARISON
from loadgate.notify import email, select, slack, teams, webhook
from loadgate.notify.deliver import BUDGET_S, deliver
from loadgate.notify.message import Message, build, top_errors
from loadgate.notify.targets import Target, resolve

KEY: Final = "notifications"  # run.json: one record per delivery, appended by each command that sends
REPORT_URL_ENV = "LOADGATE_REPORT_URL"


@dataclass
class Planned:
    target: Target
    scope: list[str]
    whole_run: bool
    because: list[str]
    sources: list[str] = field(default_factory=list)


def entries_of(files: Mapping[str, ThresholdFile], requirements: Sequence[str]) -> list[tuple[str, NotifyEntry]]:
    return [(r, e) for r in requirements if r in files for e in files[r].notify]


def warn_unresolved(
    files: Mapping[str, ThresholdFile],
    requirements: Sequence[str],
    cli: Sequence[NotifyEntry],
    say: Callable[[str], None],
) -> None:
    """Before a run: one warning per target whose secret is not in the environment."""
    for _r, entry in [*entries_of(files, requirements), *(("", e) for e in cli)]:
        target = resolve(entry)
        if target.problem:
            say(f"loadgate: warning: notify {target.label} ({entry.source}): {target.problem}; it will not be sent")


def plan(
    run_dir: str,
    verdict: VerdictDoc,
    run: RunDoc,
    comparison: Mapping[str, Any] | None,
    files: Mapping[str, ThresholdFile],
    cli: Sequence[NotifyEntry],
    say: Callable[[str], None],
    *,
    recorded: bool = False,
) -> tuple[list[Planned], dict[str, str]]:
    """The deliveries whose ``on:`` holds, one per distinct recipient; and each requirement's outcome."""
    reqs = [str(r) for r in run.get("requirements") or ()]
    mine = select.outcomes(verdict, run)
    declared = [*entries_of(files, reqs), *((None, e) for e in cli)]
    wants_history = any("recovered" in e.on for _r, e in declared)
    before = select.previous_outcomes(run_dir, reqs, say, recorded=recorded) if wants_history else {}
    groups: dict[tuple[Any, ...], Planned] = {}
    for req, entry in declared:
        scope = reqs if req is None else [req]
        because = select.holding(entry.on, scope, req is None, verdict, run, comparison, mine, before)
        if not because:
            continue
        target = resolve(entry)
        p = groups.setdefault(target.identity, Planned(target, [], False, []))
        p.whole_run = p.whole_run or req is None
        p.scope = reqs if p.whole_run else [r for r in reqs if r in {*p.scope, *scope}]
        p.because += [w for w in because if w not in p.because]
        p.sources += [entry.source] if entry.source not in p.sources else []
    return list(groups.values()), mine


def body_of(p: Planned, m: Message) -> Any:  # an e-mail message, or a JSON payload
    if p.target.kind == "email":
        return email.build(m, p.target.entry.sender or "", p.target.entry.to)
    return {"slack": slack.payload, "teams": teams.payload}.get(p.target.kind, webhook.payload)(m)


def message_of(
    p: Planned,
    run_dir: str,
    verdict: VerdictDoc,
    run: RunDoc,
    comparison: Mapping[str, Any] | None,
    files: Mapping[str, ThresholdFile],
    mine: Mapping[str, str],
    report_url: str | None,
    errors: tuple[tuple[str, str, int], ...] = (),
) -> Message:
    titles = {r: f.title for r, f in files.items()}
    scoped: VerdictDoc = (
        verdict
        if p.whole_run
        else {**verdict, "verdict": select.worst(mine.get(r, "") for r in p.scope) or verdict["verdict"]}
    )
    return build(run_dir, scoped, run, comparison, titles, mine, p.scope, p.because, report_url, errors)


def notify_run(
    run_dir: str,
    verdict: VerdictDoc,
    run: RunDoc,
    files: Mapping[str, ThresholdFile],
    cli: Sequence[NotifyEntry],
    *,
    report_url: str | None,
    say: Callable[[str], None],
    budget: float = BUDGET_S,
    by: str = "run",
) -> list[dict[str, Any]]:
    """Send what the run's outcome calls for; returns the records (also printed). Never raises.
    ``by`` is the command: ``notify`` re-sends a verdict already in the history, run and gate one not yet."""
    try:
        comparison = _comparison(run_dir)
        planned, mine = plan(run_dir, verdict, run, comparison, files, cli, say, recorded=by == "notify")
        if not planned:
            return []
        errors = _top_errors(run_dir, run, say)
        bodies = [
            body_of(p, message_of(p, run_dir, verdict, run, comparison, files, mine, report_url, errors))
            for p in planned
        ]
        with ThreadPoolExecutor(max_workers=len(planned)) as pool:
            attempts = list(pool.map(lambda pb: deliver(pb[0].target, pb[1], budget), zip(planned, bodies)))
    except Exception as e:  # a notification never changes the verdict or its exit code
        # our own errors say what and where; another exception's text might quote a target: only its type
        why = str(e) if isinstance(e, LoadgateError) else f"unexpected {type(e).__name__}"
        say(f"loadgate: warning: notifications not sent: {why}; the verdict and exit code stand")
        return [{"status": "failed", "error": why, "at": time.time(), "by": by}]
    records = []
    for p, a in zip(planned, attempts):
        records.append(
            {
                "kind": p.target.kind,
                "target": p.target.label,
                "declared": p.sources,
                "requirements": p.scope,
                "because": p.because,
                "status": a.status,
                "tries": a.tries,
                "error": a.error,
                "at": time.time(),
                "by": by,
            }
        )
        if a.status == "sent":
            say(
                f"loadgate: notified {p.target.label} ({', '.join(p.because)}; {a.tries} "
                f"{'try' if a.tries == 1 else 'tries'})"
            )
        else:
            say(
                f"loadgate: warning: notification to {p.target.label} failed after {a.tries} "
                f"{'try' if a.tries == 1 else 'tries'}: {a.error}; the verdict and exit code stand"
            )
    return records


def _top_errors(run_dir: str, run: RunDoc, say: Callable[[str], None]) -> tuple[tuple[str, str, int], ...]:
    try:
        return top_errors(run_dir, run)
    except Exception as e:  # the samples could not be read: the message goes without its error list
        say(f"loadgate: warning: notifications list no errors ({type(e).__name__}: {e})")
        return ()


def _comparison(run_dir: str) -> dict[str, Any] | None:
    path = os.path.join(run_dir, COMPARISON)
    return rundir.read_json(run_dir, COMPARISON) if os.path.isfile(path) else None


def record(run_dir: str, records: Sequence[dict[str, Any]]) -> None:
    """Append ``records`` to run.json's ``notifications`` (before the manifest is written)."""
    if not records:
        return
    run = read_run(run_dir)
    run[KEY] = [*(run.get(KEY) or []), *records]
    write_run(run_dir, run)


def resend(
    run_dir: str,
    files: Mapping[str, ThresholdFile],
    cli: Sequence[NotifyEntry],
    *,
    report_url: str | None,
    say: Callable[[str], None],
    command: Sequence[str],
    key: SigningKey | None,
    budget: float = BUDGET_S,
) -> list[dict[str, Any]]:
    """``loadgate notify RUN_DIR``: send again from the run directory's files; record, re-render the
    report and re-seal (the audit log names this command)."""
    from loadgate.outputs.report import write_report

    rundir.check_run_dir(run_dir)
    verdict, run = read_verdict(run_dir), read_run(run_dir)
    sealer = Sealer(run_dir, command, key)  # before run.json changes: an earlier edit stays visible to verify
    url = report_url or os.environ.get(REPORT_URL_ENV) or None
    records = notify_run(run_dir, verdict, run, files, cli, report_url=url, say=say, budget=budget, by="notify")
    if records:
        record(run_dir, records)
        seal = sealer.stage([rundir.REPORT])
        write_report(
            os.path.join(run_dir, rundir.REPORT),
            verdict=verdict,
            summary=read_summary(run_dir),
            run=read_run(run_dir),
            run_dir=run_dir,
            seal=seal,
        )
        sealer.close()
    return records


def hook(
    files: Mapping[str, ThresholdFile],
    requirements: Sequence[str],
    values: Sequence[str] | None,
    on: Sequence[str],
    report_url: str | None,
    budget: float | None,
    say: Callable[[str], None],
    by: str,
) -> Callable[[str, VerdictDoc, RunDoc], None] | None:
    """For ``run`` and ``gate``: the function that notifies once the verdict is written (None when nothing
    is declared). ``--notify`` values that cannot be parsed are a ConfigError now, before any run."""
    from loadgate.notify.targets import cli_entries

    cli = cli_entries(values, on)
    if not cli and not entries_of(files, requirements):
        return None
    warn_unresolved(files, requirements, cli, say)
    url = report_url or os.environ.get(REPORT_URL_ENV) or None

    def before_seal(run_dir: str, verdict: VerdictDoc, run: RunDoc) -> None:
        records = notify_run(
            run_dir, verdict, run, files, cli, report_url=url, say=say, budget=budget or BUDGET_S, by=by
        )
        try:
            record(run_dir, records)
        except OSError as e:
            say(f"loadgate: warning: cannot record the notifications in run.json ({e.strerror or e})")

    return before_seal

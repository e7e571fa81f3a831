"""Analyse and gate a run directory: samples.parquet + run.json -> summary, verdict, JUnit, Markdown, HTML.

Shared by ``loadgate run`` (right after Locust stops) and ``loadgate gate`` (re-evaluation of an
old run, without Locust). Every stage reads the previous stage's file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from typing import Any, Callable, Mapping, Sequence

from loadgate.analysis.run_window import run_window, summarize_run
from loadgate.analysis.summary_doc import SummaryDoc, write_summary
from loadgate.data import rundir
from loadgate.data.manifest import Sealer
from loadgate.data.run_doc import RunDoc, read_run, recover_unfinished
from loadgate.data.signing import SigningKey
from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import ThresholdFile, required_percentiles
from loadgate.gate.capacity import capacity_results, rejudge_step
from loadgate.gate.conditions import CAPACITY_METRICS
from loadgate.gate.status import Status, worse
from loadgate.gate.verdict import Verdict, evaluate
from loadgate.gate.verdict_doc import VerdictDoc
from loadgate.history import baseline as baselines
from loadgate.history import capacity_store
from loadgate.history import store as history
from loadgate.history.plan import build_plan
from loadgate.outputs import capacity_md
from loadgate.outputs.report import write_report
from loadgate.outputs.summary_md import append_step_summary, render_summary_md, write_summary_md
from loadgate.outputs.writers import commit_texts, render_junit, render_verdict_json, write_text
from loadgate.run.interrupt import Interrupt, Interrupted
from loadgate.sources.collect import collect as collect_resources
from loadgate.trace.regression import for_runs, regressed


BeforeSeal = Callable[[str, VerdictDoc, RunDoc], None]  # (run_dir, verdict document, run)


TEST_PAUSE = "LOADGATE_TEST_PAUSE"  # for tests only: "PHASE=SECONDS" (analysing, or committing: the report
# written, the verdict files not yet) sleeps there, so that a test can signal that phase deterministically


def _test_pause(phase: str) -> None:
    name, _, seconds = os.environ.get(TEST_PAUSE, "").partition("=")
    if name == phase and seconds:
        time.sleep(float(seconds))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def analyse_run(
    run_dir: str, run: RunDoc, files: Mapping[str, ThresholdFile], *, prometheus: str | None = None
) -> tuple[SummaryDoc, list[str]]:
    """summary.json of the run (written), and problems found on the way.

    Resource thresholds add a ``resources`` block (values over the same window, from Prometheus or the
    run's local samples); ``prometheus`` overrides the threshold files' server URL.
    """
    summary, problems = summarize_run(run_dir, run, required_percentiles(files))
    queries = [t.resource for tf in files.values() for t in tf.thresholds if t.resource is not None]
    if queries:
        summary["resources"] = collect_resources(
            run_dir, queries, run_window(run), prometheus_url=prometheus, target=run.get("host")
        )
    write_summary(run_dir, summary)
    return summary, problems


def gate_run(
    run_dir: str,
    files: Mapping[str, ThresholdFile],
    *,
    strict: bool,
    kind: str = "gate",
    baseline: str | None = None,
    say: Callable[[str], None] = _say,
    command: Sequence[str] = (),
    key: SigningKey | None = None,
    prometheus: str | None = None,
    before_seal: BeforeSeal | None = None,
    interrupt: Interrupt | None = None,
) -> tuple[Verdict, SummaryDoc, RunDoc]:
    """Analyse, gate and write every verdict output of ``run_dir``. Returns (verdict, summary, run).

    ``baseline`` is a run directory or ``last-pass`` (the default when a threshold has ``regression:``).
    Then the history (``history.sqlite`` next to the run directory) gets a record of ``kind`` run or gate.
    Last, run.json's manifest is re-sealed (signed with ``key`` if given) and ``command`` logged in its audit;
    ``before_seal(run_dir, verdict document, run)`` (the notifications) runs once the verdict is final, before the seal.
    Under a raising ``interrupt`` (the CLI's), SIGINT/SIGTERM before the verdict is final raises
    :class:`Interrupted`, after the verdict files were made to say so: none claims a verdict never reached.
    """
    rundir.check_run_dir(run_dir)
    phase = ["analysing"]
    try:
        return _gate_run(
            run_dir,
            files,
            phase,
            strict=strict,
            kind=kind,
            baseline=baseline,
            say=say,
            command=command,
            key=key,
            prometheus=prometheus,
            interrupt=interrupt,
            before_seal=before_seal,
        )
    except Interrupted as e:  # a re-gate stopped before it rewrote anything leaves the sealed directory as it was
        mark_interrupted(run_dir, e, phase[0], strict, files=kind == "run" or phase[0] != "analysing")
        raise
    except OSError as e:  # a full disk: no file may claim the verdict the others could not be written for
        what = f"{e.filename or run_dir}: {e.strerror or e} while {phase[0]}"
        _mark_unfinished(run_dir, what, strict)
        raise RunError(
            f"{what}: no verdict was written; the samples recorded are kept: free some space, then run "
            f"'loadgate gate {run_dir}'"
        ) from None


def _gate_run(
    run_dir: str,
    files: Mapping[str, ThresholdFile],
    phase: list[str],
    *,
    strict: bool,
    kind: str,
    baseline: str | None,
    say: Callable[[str], None],
    command: Sequence[str],
    key: SigningKey | None,
    prometheus: str | None,
    interrupt: Interrupt | None,
    before_seal: BeforeSeal | None,
) -> tuple[Verdict, SummaryDoc, RunDoc]:
    rundir.release_space(run_dir)  # the recorder's reserve, left by a Locust killed outright: not evidence
    sealer = Sealer(run_dir, command or ["loadgate", kind, run_dir], key)  # before anything is rewritten
    if not os.path.exists(os.path.join(run_dir, rundir.SAMPLES)) and os.path.exists(
        os.path.join(run_dir, rundir.STREAM)
    ):
        rundir.finalize_samples(run_dir)  # a run whose Parquet could not be written (disk full) is recovered here
    run = recover_unfinished(run_dir, read_run(run_dir))
    reqs = run.get("requirements") or []
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(
            f"{run_dir}: no threshold file for {', '.join(missing)}; "
            "add thresholds/<REQ>.yaml or pass --thresholds PATH"
        )
    used = {r: files[r] for r in reqs}
    _test_pause("analysing")
    summary, problems = analyse_run(run_dir, run, used, prometheus=prometheus)
    phase[0] = "gating"
    against = baselines.against(baseline, run_dir, run, used, say)
    verdict = evaluate(
        used,
        summary,
        requirements=reqs,
        strict=strict,
        problems=[*(run.get("problems") or []), *problems],
        aborted=run.get("aborted"),
        interrupted=run.get("interrupted"),
        baseline=against.base.summary if against else None,
        significance=against.ci if against else None,
    )
    if run.get("notes"):  # facts every reader must see (an unauthenticated worker channel) that change no status
        verdict = dataclasses.replace(verdict, reasons=(*verdict.reasons, *map(str, run["notes"])))
    phase[0] = "writing the outputs"
    comparison = baselines.write_comparison(run_dir, against)
    if against is not None:  # the commits between the baseline's and this run's, the regressed requirements' first
        changes = for_runs(against.base.run_dir, run, regressed(verdict.to_dict(), comparison))
        verdict = dataclasses.replace(verdict, changes=changes)
    write_outputs(
        run_dir,
        verdict,
        summary,
        run,
        used,
        sealer=sealer,
        kind=kind,
        before_seal=before_seal,
        final=interrupt.final if interrupt is not None else None,
    )
    history.record_safely(
        run_dir, run, summary, verdict.to_dict(), kind=kind, baseline=against.base.run_id if against else None, say=say
    )
    return verdict, summary, run


def mark_interrupted(run_dir: str, e: Interrupted, phase: str, strict: bool, *, files: bool = True) -> None:
    """``e`` came while ``phase`` of ``run_dir``: say where in ``e`` and (``files``) in the verdict files, once."""
    if e.run_dir is None:
        e.run_dir, e.phase = run_dir, phase
        if files:
            _mark_unfinished(run_dir, f"{e.reason} while {e.phase}", strict)


def _mark_unfinished(run_dir: str, what: str, strict: bool) -> None:
    """After an interruption (or a full disk): verdict.json, junit.xml and summary.md say so, and no report
    shows a verdict that is not the directory's (``loadgate gate`` writes them all again). No manifest."""
    reason = f"{what}: no verdict was reached; run 'loadgate gate {run_dir}' to analyse and gate the samples recorded"
    verdict = Verdict.of(Status.INCONCLUSIVE, (reason,), (), strict, (reason,))
    outputs: dict[str, Callable[[], str]] = {
        rundir.VERDICT: lambda: render_verdict_json(verdict),
        rundir.JUNIT: lambda: render_junit(verdict),
        rundir.SUMMARY_MD: lambda: render_summary_md(verdict, None),
    }
    for name, render in outputs.items():
        path = os.path.join(run_dir, name)
        try:
            write_text(path, render())
        except OSError:  # a full disk: at least no stale verdict stays
            with contextlib.suppress(OSError):
                os.remove(path)
    with contextlib.suppress(OSError):
        os.remove(os.path.join(run_dir, rundir.REPORT))


def write_outputs(
    run_dir: str,
    verdict: Verdict,
    summary: SummaryDoc,
    run: RunDoc,
    files: Mapping[str, ThresholdFile],
    *,
    sealer: Sealer | None = None,
    kind: str = "gate",
    final: Callable[[], None] | None = None,
    before_seal: BeforeSeal | None = None,
) -> None:
    """summary.md, report.html, then verdict.json and junit.xml; with a ``sealer``, the manifest last of all.

    The verdict files come last, once everything else is written (a process stopped before leaves none
    claiming a verdict); ``final()`` is called before them, from which point a signal no longer stops the work.
    ``before_seal`` (the notifications, which may add to run.json) runs first of all, the verdict final from then.
    The report shows the evidence that covers them, hashed from what they will contain."""
    pending = {
        rundir.VERDICT: render_verdict_json(verdict),
        rundir.JUNIT: render_junit(verdict, files=files, timestamp=run.get("start")),
    }
    md = write_summary_md(
        verdict, summary, os.path.join(run_dir, rundir.SUMMARY_MD), run=run, files=files, step_summary=False
    )
    if before_seal is not None:  # a notification says the verdict: it is final from here (and its record in
        if final is not None:  # run.json is staged with the rest, so the report's evidence covers it)
            final()
        before_seal(run_dir, verdict.to_dict(), run)
    seal = None
    if sealer is not None:  # a run wrote every file; a gate rewrites the analysis and its outputs
        rewrote = (
            sorted({*os.listdir(run_dir), rundir.REPORT, *pending})
            if kind == "run"
            else [
                n
                for n in (
                    rundir.SUMMARY,
                    rundir.VERDICT,
                    rundir.JUNIT,
                    rundir.SUMMARY_MD,
                    rundir.REPORT,
                    baselines.COMPARISON,
                    rundir.CAPACITY,
                    capacity_md.FILE,
                )
                if os.path.exists(os.path.join(run_dir, n)) or n in (rundir.REPORT, *pending)
            ]
        )
        seal = sealer.stage(rewrote, pending={n: t.encode() for n, t in pending.items()})
    write_report(os.path.join(run_dir, rundir.REPORT), verdict=verdict.to_dict(), summary=summary, run=run, seal=seal)
    _test_pause("committing")
    if final is not None:
        final()
    commit_texts({os.path.join(run_dir, name): text for name, text in pending.items()})
    if sealer is not None:
        sealer.close()
    append_step_summary(md)


def gate_capacity(
    run_dir: str,
    files: Mapping[str, ThresholdFile],
    capacity: Mapping[str, Any],
    step_verdict: Verdict | None,
    *,
    inconclusive: bool,
    command: Sequence[str] = (),
    key: SigningKey | None = None,
    kind: str = "run",
    say: Callable[[str], None] = _say,
) -> tuple[Verdict, SummaryDoc, RunDoc]:
    """The outputs of a ``loadgate capacity`` run: summary.json over the whole run, and a verdict whose
    thresholds are the highest passing step's (else the first step's) and whose level is the search's:
    inconclusive when it could not bracket the limit, fail when not even the first step passed. Then the
    capacity plan (capacity.json's ``planning``, capacity.md) and the record in the history (``kind``)."""
    sealer = Sealer(run_dir, command or ["loadgate", "capacity" if kind == "run" else kind, run_dir], key)
    run = read_run(run_dir)
    reqs = run.get("requirements") or []
    used = {r: files[r] for r in reqs}
    summary, problems = analyse_run(run_dir, run, used)
    problems = [*(run.get("problems") or []), *problems]
    by_rate = capacity.get("quantity") == "rate"
    found = capacity.get("max_rate") if by_rate else capacity.get("max_users")
    if run.get("interrupted") or inconclusive or problems:
        level = Status.INCONCLUSIVE
    else:
        level = Status.FAIL if found is None else Status.PASS
    results = capacity_results(used, capacity, requirements=reqs, baseline=baselines.last_capacity(run_dir, run))
    for r in results:
        if r.status != Status.SKIPPED:
            level = worse(level, r.status)
    what = ("capacity: at least " if capacity.get("at_least") else "capacity: ") + (
        "no step passed" if found is None else f"{found:g} iterations/s" if by_rate else f"{found} users"
    )
    limit = capacity.get("limit")
    reasons = (
        [f"{what}; {capacity.get('stopped_because')}"]
        + (
            [
                f"limit: {limit['requirement']} {limit['metric']}"
                + (f" of {limit['request']}" if limit.get("request") else "")
                + f" {limit['value']:.4g} {limit['unit']} crossed {limit['alert']}"
            ]
            if limit and limit.get("value") is not None
            else []
        )
        + ([f"broke first: {capacity['broke_first']}"] if capacity.get("broke_first") else [])
        + problems
        + [r.reason for r in results if r.reason]
    )
    steps = tuple(r for r in (step_verdict.thresholds if step_verdict else ()) if r.metric not in CAPACITY_METRICS)
    verdict = Verdict.of(level, reasons, (*results, *steps), False, problems)
    plan = build_plan(run_dir, run, capacity, used, verdict.to_dict())
    rundir.write_json(os.path.join(run_dir, rundir.CAPACITY), {**capacity, "planning": plan})
    capacity_md.write(os.path.join(run_dir, capacity_md.FILE), plan)
    write_outputs(run_dir, verdict, summary, run, used, sealer=sealer, kind=kind)
    history.record_safely(
        run_dir, run, summary, verdict.to_dict(), kind=kind, say=say, capacity=capacity_store.row(capacity, run, plan)
    )
    return verdict, summary, run


def regate_capacity(
    run_dir: str,
    files: Mapping[str, ThresholdFile],
    *,
    command: Sequence[str] = (),
    key: SigningKey | None = None,
    say: Callable[[str], None] = _say,
) -> tuple[Verdict, SummaryDoc, RunDoc]:
    """``loadgate gate`` of a capacity run directory: judged again as the search judged it (its highest
    passing step from the samples, the search's capacity.json against the capacity thresholds)."""
    rundir.check_run_dir(run_dir)
    capacity = rundir.read_json(run_dir, rundir.CAPACITY)
    reqs = read_run(run_dir).get("requirements") or []
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(
            f"{run_dir}: no threshold file for {', '.join(missing)}; "
            "add thresholds/<REQ>.yaml or pass --thresholds PATH"
        )
    used = {r: files[r] for r in reqs}
    step = rejudge_step(os.path.join(run_dir, rundir.SAMPLES), used, capacity, requirements=reqs)
    return gate_capacity(
        run_dir,
        used,
        capacity,
        step,
        inconclusive=bool(capacity.get("inconclusive")),
        command=command,
        key=key,
        kind="gate",
        say=say,
    )

"""Analyse and gate a run directory: samples.parquet + run.json -> summary, verdict, JUnit, Markdown, HTML.

Shared by ``loadgate run`` (right after Locust stops) and ``loadgate gate`` (re-evaluation of an
old run, without Locust). Every stage reads the previous stage's file.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Callable, Mapping, Sequence

from loadgate.analysis.run_window import run_window, summarize_run
from loadgate.data import rundir
from loadgate.data.manifest import Sealer
from loadgate.data.signing import SigningKey
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import ThresholdFile, required_percentiles
from loadgate.gate.capacity import capacity_results, rejudge_step
from loadgate.gate.conditions import CAPACITY_METRICS
from loadgate.gate.verdict import Verdict, evaluate
from loadgate.history import baseline as baselines
from loadgate.history import capacity_store
from loadgate.history import store as history
from loadgate.history.plan import build_plan
from loadgate.outputs import capacity_md
from loadgate.outputs.report import write_report
from loadgate.outputs.writers import write_junit, write_summary_md, write_verdict_json
from loadgate.sources.collect import collect as collect_resources
from loadgate.trace.regression import for_runs, regressed


BeforeSeal = Callable[[str, dict, dict], None]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def analyse_run(run_dir: str, run: dict, files: Mapping[str, ThresholdFile], *,
                prometheus: str | None = None) -> tuple[dict, list[str]]:
    """summary.json of the run (written), and problems found on the way.

    Resource thresholds add a ``resources`` block (values over the same window, from Prometheus or the
    run's local samples); ``prometheus`` overrides the threshold files' server URL.
    """
    summary, problems = summarize_run(run_dir, run, required_percentiles(files))
    queries = [t.resource for tf in files.values() for t in tf.thresholds if t.resource is not None]
    if queries:
        summary["resources"] = collect_resources(run_dir, queries, run_window(run), prometheus_url=prometheus,
                                                 target=run.get("host"))
    rundir.write_json(os.path.join(run_dir, rundir.SUMMARY), summary)
    return summary, problems


def gate_run(run_dir: str, files: Mapping[str, ThresholdFile], *, strict: bool, kind: str = "gate",
             baseline: str | None = None, say: Callable[[str], None] = _say, command: Sequence[str] = (),
             key: SigningKey | None = None, prometheus: str | None = None,
             before_seal: BeforeSeal | None = None) -> tuple[Verdict, dict, dict]:
    """Analyse, gate and write every verdict output of ``run_dir``. Returns (verdict, summary, run).

    ``baseline`` is a run directory or ``last-pass`` (the default when a threshold has ``regression:``).
    Then the history (``history.sqlite`` next to the run directory) gets a record of ``kind`` run or gate.
    Last, run.json's manifest is re-sealed (signed with ``key`` if given) and ``command`` logged in its audit;
    ``before_seal(run_dir, verdict document, run)`` (the notifications) runs just before, once verdict.json is written.
    """
    rundir.check_run_dir(run_dir)
    sealer = Sealer(run_dir, command or ["loadgate", kind, run_dir], key)  # before anything is rewritten
    run = rundir.recover_unfinished(run_dir, rundir.read_json(run_dir, rundir.RUN))
    reqs = run.get("requirements") or []
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(f"{run_dir}: no threshold file for {', '.join(missing)}; "
                          "add thresholds/<REQ>.yaml or pass --thresholds PATH")
    used = {r: files[r] for r in reqs}
    summary, problems = analyse_run(run_dir, run, used, prometheus=prometheus)
    against = baselines.against(baseline, run_dir, run, used, say)
    verdict = evaluate(used, summary, requirements=reqs, strict=strict,
                       problems=[*(run.get("problems") or []), *problems],
                       aborted=run.get("aborted"), interrupted=run.get("interrupted"),
                       baseline=against.base.summary if against else None,
                       significance=against.ci if against else None)
    if run.get("notes"):  # facts every reader must see (an unauthenticated worker channel) that change no status
        verdict = dataclasses.replace(verdict, reasons=(*verdict.reasons, *map(str, run["notes"])))
    comparison = baselines.write_comparison(run_dir, against)
    if against is not None:  # the commits between the baseline's and this run's, the regressed requirements' first
        changes = for_runs(against.base.run_dir, run, regressed(verdict.to_dict(), comparison))
        verdict = dataclasses.replace(verdict, changes=changes)
    write_outputs(run_dir, verdict, summary, run, used, sealer=sealer, kind=kind, before_seal=before_seal)
    history.record_safely(run_dir, run, summary, verdict.to_dict(), kind=kind,
                          baseline=against.base.run_id if against else None, say=say)
    return verdict, summary, run


def write_outputs(run_dir: str, verdict: Verdict, summary: dict, run: dict, files: Mapping[str, ThresholdFile],
                  *, sealer: Sealer | None = None, kind: str = "gate", before_seal: BeforeSeal | None = None) -> None:
    """verdict.json, junit.xml, summary.md, report.html; with a ``sealer``, the manifest last of all."""
    write_verdict_json(verdict, os.path.join(run_dir, rundir.VERDICT))
    write_junit(verdict, os.path.join(run_dir, rundir.JUNIT), files=files, timestamp=run.get("start"))
    write_summary_md(verdict, summary, os.path.join(run_dir, rundir.SUMMARY_MD), run=run, files=files)
    if before_seal is not None:  # may add to run.json: the seal below covers it
        before_seal(run_dir, verdict.to_dict(), run)
    seal = None
    if sealer is not None:  # a run wrote every file; a gate rewrites the analysis and its outputs
        rewrote = (sorted({*os.listdir(run_dir), rundir.REPORT}) if kind == "run" else
                   [n for n in (rundir.SUMMARY, rundir.VERDICT, rundir.JUNIT, rundir.SUMMARY_MD, rundir.REPORT,
                                baselines.COMPARISON, rundir.CAPACITY, capacity_md.FILE)
                    if os.path.exists(os.path.join(run_dir, n)) or n == rundir.REPORT])
        seal = sealer.stage(rewrote)
    write_report(os.path.join(run_dir, rundir.REPORT), verdict=verdict.to_dict(), summary=summary, run=run, seal=seal)
    if sealer is not None:
        sealer.close()


def gate_capacity(run_dir: str, files: Mapping[str, ThresholdFile], capacity: Mapping, step_verdict: Verdict | None,
                  *, inconclusive: bool, command: Sequence[str] = (), key: SigningKey | None = None,
                  kind: str = "run", say: Callable[[str], None] = _say) -> tuple[Verdict, dict, dict]:
    """The outputs of a ``loadgate capacity`` run: summary.json over the whole run, and a verdict whose
    thresholds are the highest passing step's (else the first step's) and whose level is the search's:
    inconclusive when it could not bracket the limit, fail when not even the first step passed. Then the
    capacity plan (capacity.json's ``planning``, capacity.md) and the record in the history (``kind``)."""
    sealer = Sealer(run_dir, command or ["loadgate", "capacity" if kind == "run" else kind, run_dir], key)
    run = rundir.read_json(run_dir, rundir.RUN)
    reqs = run.get("requirements") or []
    used = {r: files[r] for r in reqs}
    summary, problems = analyse_run(run_dir, run, used)
    problems = [*(run.get("problems") or []), *problems]
    found = capacity.get("max_users")
    if run.get("interrupted") or inconclusive or problems:
        level = "inconclusive"
    else:
        level = "fail" if found is None else "pass"
    results = capacity_results(used, capacity, requirements=reqs, baseline=baselines.last_capacity(run_dir, run))
    for r in results:
        if r.status != "skipped":
            level = max(level, r.status, key=("pass", "warn", "inconclusive", "fail").index)  # fail outranks all
    what = ("capacity: at least " if capacity.get("at_least") else "capacity: ") + (
        f"{found} users" if found is not None else "no step passed")
    limit = capacity.get("limit")
    reasons = [f"{what}; {capacity.get('stopped_because')}"] + (
        [f"limit: {limit['requirement']} {limit['metric']}" + (f" of {limit['request']}" if limit.get("request") else "")
         + f" {limit['value']:.4g} {limit['unit']} crossed {limit['alert']}"] if limit and limit.get("value") is not None
        else []) + problems + [r.reason for r in results if r.reason]
    exit_code = {"pass": 0, "warn": 0, "fail": 1, "inconclusive": 3}[level]
    steps = tuple(r for r in (step_verdict.thresholds if step_verdict else ()) if r.metric not in CAPACITY_METRICS)
    verdict = Verdict(level, exit_code, tuple(reasons), (*results, *steps), False, tuple(problems))
    plan = build_plan(run_dir, run, capacity, used, verdict.to_dict())
    rundir.write_json(os.path.join(run_dir, rundir.CAPACITY), {**capacity, "planning": plan})
    capacity_md.write(os.path.join(run_dir, capacity_md.FILE), plan)
    write_outputs(run_dir, verdict, summary, run, used, sealer=sealer, kind=kind)
    history.record_safely(run_dir, run, summary, verdict.to_dict(), kind=kind, say=say,
                          capacity=capacity_store.row(capacity, run, plan))
    return verdict, summary, run


def regate_capacity(run_dir: str, files: Mapping[str, ThresholdFile], *, command: Sequence[str] = (),
                    key: SigningKey | None = None, say: Callable[[str], None] = _say) -> tuple[Verdict, dict, dict]:
    """``loadgate gate`` of a capacity run directory: judged again as the search judged it (its highest
    passing step from the samples, the search's capacity.json against the capacity thresholds)."""
    rundir.check_run_dir(run_dir)
    capacity = rundir.read_json(run_dir, rundir.CAPACITY)
    reqs = rundir.read_json(run_dir, rundir.RUN).get("requirements") or []
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(f"{run_dir}: no threshold file for {', '.join(missing)}; "
                          "add thresholds/<REQ>.yaml or pass --thresholds PATH")
    used = {r: files[r] for r in reqs}
    step = rejudge_step(os.path.join(run_dir, rundir.SAMPLES), used, capacity, requirements=reqs)
    return gate_capacity(run_dir, used, capacity, step, inconclusive=bool(capacity.get("inconclusive")),
                         command=command, key=key, kind="gate", say=say)

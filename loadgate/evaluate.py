"""Analyse and gate a run directory: samples.parquet + run.json -> summary, verdict, JUnit, Markdown, HTML.

Shared by ``loadgate run`` (right after Locust stops) and ``loadgate gate`` (re-evaluation of an
old run, without Locust). Every stage reads the previous stage's file.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Mapping

from loadgate.analysis.run_window import run_window, summarize_run
from loadgate.data import rundir
from loadgate.errors import ConfigError
from loadgate.gate.thresholds import ThresholdFile, required_percentiles
from loadgate.gate.verdict import Verdict, evaluate
from loadgate.history import baseline as baselines
from loadgate.history import store as history
from loadgate.outputs.report import write_report
from loadgate.outputs.writers import write_junit, write_summary_md, write_verdict_json
from loadgate.sources.collect import collect as collect_resources


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
             baseline: str | None = None, say: Callable[[str], None] = _say,
             prometheus: str | None = None) -> tuple[Verdict, dict, dict]:
    """Analyse, gate and write every verdict output of ``run_dir``. Returns (verdict, summary, run).

    ``baseline`` is a run directory or ``last-pass`` (the default when a threshold has ``regression:``).
    Then the history (``history.sqlite`` next to the run directory) gets a record of ``kind`` run or gate.
    """
    rundir.check_run_dir(run_dir)
    run = rundir.read_json(run_dir, rundir.RUN)
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
    baselines.write_comparison(run_dir, against)
    write_outputs(run_dir, verdict, summary, run, used)
    history.record_safely(run_dir, run, summary, verdict.to_dict(), kind=kind,
                          baseline=against.base.run_id if against else None, say=say)
    return verdict, summary, run


def write_outputs(run_dir: str, verdict: Verdict, summary: dict, run: dict,
                  files: Mapping[str, ThresholdFile]) -> None:
    write_verdict_json(verdict, os.path.join(run_dir, rundir.VERDICT))
    write_junit(verdict, os.path.join(run_dir, rundir.JUNIT), files=files, timestamp=run.get("start"))
    write_summary_md(verdict, summary, os.path.join(run_dir, rundir.SUMMARY_MD), run=run, files=files)
    write_report(os.path.join(run_dir, rundir.REPORT), verdict=verdict.to_dict(), summary=summary, run=run)

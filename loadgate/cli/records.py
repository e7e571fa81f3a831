"""The commands that read the record of past runs: history, compare, trace, and notify (re-sending)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from loadgate.cli.commands import _print_changes, _say
from loadgate.data.run_doc import read_run
from loadgate.errors import LoadgateError
from loadgate.gate.status import exit_code
from loadgate.gate.verdict_doc import read_verdict


def cmd_history(args: argparse.Namespace) -> int:
    from loadgate.history import store as history
    from loadgate.history.listing import format_runs

    if args.capacity:
        from loadgate.history.capacity_store import capacity_runs, format_capacity_runs

        rows = capacity_runs(history.db_path(args.out), limit=args.limit)
        rows = [r for r in rows if not args.requirement or args.requirement in r["requirements"]]
        if args.json:
            json.dump(rows, sys.stdout, indent=2)
            print()
        else:
            print(format_capacity_runs(rows))
        return 0
    records = history.runs(history.db_path(args.out), requirement=args.requirement, limit=args.limit)
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2)
        print()
    else:
        print(format_runs(records))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from loadgate.history.compare_rows import compare_runs
    from loadgate.history.compare_table import format_compare

    doc = compare_runs(
        args.baseline, args.candidate, tolerance_latency=args.tolerance_latency, tolerance_errors=args.tolerance_errors
    )
    doc = _with_changes(doc, args.baseline, args.candidate)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        *table, verdict_line = format_compare(doc, color=sys.stdout.isatty()).split("\n")
        print("\n".join(table))
        _print_changes(doc.get("changes_since_baseline"))  # the commits between the runs, above the verdict
        print(verdict_line)
    return exit_code(doc["verdict"])  # pass 0, fail 1


def _with_changes(doc: dict[str, Any], baseline: str, candidate: str) -> dict[str, Any]:
    """A comparison that found a regression names the commits between the two runs (an additive key)."""
    from loadgate.trace.regression import for_runs, regressed

    found = regressed(None, doc)
    if not found:
        return doc
    run: Mapping[str, Any]
    try:
        run = read_run(candidate)
    except LoadgateError:  # the comparison stands on the samples; the list then says no commit was recorded
        run = {}
    return {**doc, "changes_since_baseline": for_runs(baseline, run, found)}


def cmd_trace(args: argparse.Namespace) -> int:
    from loadgate.history.store import db_path
    from loadgate.scenarios.scenario_ids import scenario_definitions
    from loadgate.trace import audit, catalogue, git, render
    from loadgate.trace.ids import compile_pattern

    pattern = compile_pattern(args.pattern)
    allow = [compile_pattern(a, "--allow") for a in args.allow or ()]
    top = git.toplevel(".")
    scenarios, notes = scenario_definitions(args.scenarios, top)
    found = catalogue.build(top, args.thresholds, scenarios, notes)
    if args.ids:
        print("\n".join(render.render_ids(found, args.format)))
        return 0
    rng = audit.choose_range(top, args.since, db_path(args.out))
    result = audit.trace(top, rng, found, pattern, allow=allow, merges=args.merges)
    print("\n".join(render.render(result, args.format)))
    return 0 if result.ok else 1


def cmd_notify(args: argparse.Namespace) -> int:
    from loadgate.data import rundir
    from loadgate.data.signing import load_signing_key
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.notify.deliver import BUDGET_S
    from loadgate.notify.send import resend
    from loadgate.notify.targets import cli_entries

    rundir.check_run_dir(args.run_dir)
    run = read_run(args.run_dir)
    recorded = (run.get("options") or {}).get("thresholds")
    path = args.thresholds or (recorded if recorded and os.path.exists(recorded) else "thresholds")
    key = load_signing_key(args.signing_key)
    files = load_thresholds(path) if args.thresholds or os.path.exists(path) else {}  # none: --notify targets only
    records = resend(
        args.run_dir,
        files,
        cli_entries(args.notify, args.notify_on),
        report_url=args.report_url,
        say=_say,
        command=args.command_line,
        key=key,
        budget=args.notify_timeout or BUDGET_S,
    )
    if not records:
        print(f"{args.run_dir}: no notification called for (verdict {read_verdict(args.run_dir)['verdict']})")
    return 1 if any(r.get("status") != "sent" for r in records) else 0

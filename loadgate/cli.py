"""The ``loadgate`` command line: a thin layer that parses flags, calls the library, prints, exits.

Only this module turns a :class:`loadgate.errors.LoadgateError` into one line on stderr and its
exit code. Exit codes: 0 pass, 1 gate failed, 2 usage/configuration error, 3 inconclusive.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from loadgate import __version__
from loadgate.errors import EXIT_CONFIG, EXIT_INCONCLUSIVE, ConfigError, LoadgateError
from loadgate.units import parse_duration

EPILOG = "exit codes: 0 pass (warnings allowed unless --strict), 1 gate failed, 2 usage or configuration error, 3 inconclusive"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the command, as every loadgate error does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(convert: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: ``convert(text)`` that must be > 0, else 'expected WHAT > 0, got …'."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value <= 0:
            raise argparse.ArgumentTypeError(f"expected {what} > 0, got {text!r}")
        return value
    return parse


_positive_int = _positive(int, "a whole number")
_positive_float = _positive(float, "a number")


def _tolerance(text: str) -> float:
    from loadgate.history.compare import parse_tolerance

    try:
        return parse_tolerance(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- commands -------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.history.baseline import check_spec as check_baseline
    from loadgate.outputs.writers import format_table
    from loadgate.run.options import resolve_options
    from loadgate.run.runner import execute
    from loadgate.run.scenarios import check_requirements, load_catalog

    reqs = list(dict.fromkeys(args.requirement))
    files = load_thresholds(args.thresholds)
    catalog = load_catalog(args.scenarios)
    check_requirements(catalog, reqs, args.scenarios)
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(f"--requirement {missing[0]}: no threshold file in {args.thresholds} says "
                          f"'requirement: {missing[0]}'; add {os.path.join(args.thresholds, missing[0])}.yaml")
    flags = {"requirements": reqs, "users": args.users, "spawn_rate": args.spawn_rate,
             "duration": args.duration, "warmup": args.warmup, "host": args.host,
             "scenarios": args.scenarios, "thresholds": args.thresholds, "out": args.out,
             "workers": args.workers, "strict": args.strict, "latency_scale": args.target_latency_scale,
             "expect_workers": args.expect_workers, "master_bind": args.master_bind,
             "worker_wait": args.worker_wait, "allow_worker_loss": args.allow_worker_loss}
    opts = resolve_options(flags, files, ["loadgate", *sys.argv[1:]])
    used = {r: files[r] for r in reqs}
    check_baseline(args.baseline)
    rec = execute(opts, catalog, used, _say)
    _say(f"loadgate: recorded {rec.samples} samples; analysing")
    verdict, _summary, _run = gate_run(rec.run_dir, used, strict=args.strict, kind="run", baseline=args.baseline,
                                       say=_say)
    print(format_table(verdict, color=sys.stdout.isatty()))
    print(f"run directory: {rec.run_dir}  (report.html, verdict.json, junit.xml, summary.md, samples.parquet)")
    return verdict.exit_code


def cmd_gate(args: argparse.Namespace) -> int:
    from loadgate.data import rundir
    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.outputs.writers import format_table

    rundir.check_run_dir(args.run_dir)
    path = args.thresholds
    if path is None:
        run = rundir.read_json(args.run_dir, rundir.RUN)
        recorded = (run.get("options") or {}).get("thresholds")
        path = recorded if recorded and os.path.exists(recorded) else "thresholds"
    verdict, _summary, _run = gate_run(args.run_dir, load_thresholds(path), strict=args.strict,
                                       baseline=args.baseline, say=_say)
    print(format_table(verdict, color=sys.stdout.isatty()))
    return verdict.exit_code


def cmd_history(args: argparse.Namespace) -> int:
    from loadgate.history import store as history

    records = history.runs(history.db_path(args.out), requirement=args.requirement, limit=args.limit)
    if args.json:
        json.dump([r.to_dict() for r in records], sys.stdout, indent=2)
        print()
    else:
        print(history.format_runs(records))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from loadgate.history.compare import compare_runs, format_compare

    doc = compare_runs(args.baseline, args.candidate, tolerance_latency=args.tolerance_latency,
                       tolerance_errors=args.tolerance_errors)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        print(format_compare(doc, color=sys.stdout.isatty()))
    return 1 if doc["verdict"] == "fail" else 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from loadgate.analysis.stream import summarize_file, time_range
    from loadgate.analysis.summary import COLUMNS, summarize
    from loadgate.analysis.table import format_summary_table
    from loadgate.analysis.window import parse_window
    from loadgate.data.row_groups import is_parquet
    from loadgate.data.samples import read_samples

    streamed = is_parquet(args.samples)  # Parquet: one row group at a time, memory bounded (CONTRACT §16)
    table = None if streamed else read_samples(args.samples, list(COLUMNS), dictionary=True)
    window = None
    if args.window:
        if streamed:
            ends = time_range(args.samples)
        else:
            import pyarrow.compute as pc
            ts = table.column("timestamp")
            ends = (pc.min(ts).as_py(), pc.max(ts).as_py()) if len(ts) else None
        if ends is None:
            raise ConfigError(f"{args.samples}: no samples, so --window has nothing to cut")
        try:
            window = parse_window(args.window, *ends)
        except ValueError as e:
            raise ConfigError(f"--window {args.window}: {e}") from None
    if streamed:
        summary = summarize_file(args.samples, window, series=args.json)
    else:
        summary = summarize(table, window, series=args.json)
    if args.json:
        sys.stdout.write(json.dumps(summary))  # no indent: keeps the C encoder (0.1 s of 1.4 s at 10M); pipe to jq to read
        print()
    else:
        print(format_summary_table(summary))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from loadgate.outputs.report import write_run_report

    print(write_run_report(args.run_dir, args.output))  # charts from the run directory's samples
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from loadgate.run.check import check

    ok, lines = check(args.scenarios, args.thresholds)
    for line in lines:
        print(line)
    return 0 if ok else EXIT_CONFIG


def cmd_worker(args: argparse.Namespace) -> int:
    from loadgate.run.runner import run_worker
    from loadgate.run.scenarios import discover

    return run_worker(args.master, discover(args.scenarios), _say)


def cmd_target(args: argparse.Namespace) -> int:
    from loadgate.run.demo_target import serve

    serve(args.host, args.port, latency_scale=args.latency_scale)
    return 0


# --- parser ---------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="loadgate", description="Load-testing quality gate: run tagged Locust scenarios, "
                "record every request, gate exact percentiles against YAML thresholds.", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"loadgate {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run the scenarios of requirements headless, then analyse and gate",
                       description="Run the Locust tasks tagged with the requirement IDs headless, record "
                       "every request, analyse, gate against the thresholds, write a run directory and "
                       "exit with the verdict's code. Flags override the load: block of the threshold file.",
                       epilog=EPILOG)
    r.add_argument("--requirement", action="append", required=True, metavar="REQ-…",
                   help="requirement ID whose tagged tasks run (repeatable)")
    r.add_argument("--users", type=_positive_int, help="concurrent users at full load (default: load.users, else 10)")
    r.add_argument("--spawn-rate", type=_positive_float, metavar="R",
                   help="users started per second (default: load.spawn_rate, else min(users, 100))")
    r.add_argument("--duration", type=_duration, help="time at full user count, after ramp-up, e.g. 5m (default: load.duration, else 1m)")
    r.add_argument("--warmup", type=_duration, help="time after ramp-up left out of analysis, e.g. 30s (default: load.warmup, else 0)")
    r.add_argument("--host", help="target base URL; default: the scenario's host, else the embedded demo target")
    r.add_argument("--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)")
    r.add_argument("--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)")
    r.add_argument("--out", default="reports", metavar="DIR", help="where run directories go (default: reports/)")
    r.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="load-generator processes; N > 1 runs a Locust master with N local workers (default: 1)")
    r.add_argument("--expect-workers", type=_positive_int, default=0, metavar="N",
                   help="run a Locust master that waits for N remote workers ('loadgate worker --master HOST:PORT')")
    r.add_argument("--master-bind", metavar="HOST:PORT",
                   help="where the master listens for remote workers (default 127.0.0.1:5557; 0.0.0.0:5557 "
                   "accepts workers from other machines)")
    r.add_argument("--worker-wait", type=_duration, default=60.0, metavar="TIME",
                   help="how long the master waits for --expect-workers to connect (default: 60s)")
    r.add_argument("--allow-worker-loss", action="store_true",
                   help="a worker lost mid-run does not make the verdict inconclusive (it is still reported)")
    r.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    r.add_argument("--target-latency-scale", type=_positive_float, default=1.0, metavar="X",
                   help="embedded demo target only: multiply its latencies by X (a slower build)")
    r.add_argument("--baseline", metavar="RUN_DIR|last-pass",
                   help="run to measure regression thresholds against and compare with (default: last-pass, the "
                   "newest passing run in --out's history, when a threshold has regression:)")
    r.set_defaults(func=cmd_run)

    a = sub.add_parser("analyze", help="summarise a samples file (ours or Locust's CSV request log)",
                       description="Exact percentiles, error rates and throughput of a samples file, "
                       "per request and per requirement. A Parquet file is read a batch of rows at a time: "
                       "memory grows with the requests and seconds, not the samples (soak runs).", epilog=EPILOG)
    a.add_argument("samples", metavar="SAMPLES", help="samples.parquet, or a Locust csv_request_logger CSV")
    a.add_argument("--window", metavar="START:END",
                   help="analyse only this window: offsets from the first sample (30s:5m) or Unix times; either side may be empty")
    a.add_argument("--json", action="store_true", help="print summary.json content instead of a table")
    a.set_defaults(func=cmd_analyze)

    g = sub.add_parser("gate", help="re-evaluate thresholds against an existing run directory",
                       description="Re-analyse a run directory's samples and re-evaluate thresholds; rewrites "
                       "summary.json, verdict.json, junit.xml, summary.md and report.html.", epilog=EPILOG)
    g.add_argument("run_dir", metavar="RUN_DIR")
    g.add_argument("--thresholds", metavar="PATH", help="threshold folder or file (default: the one the run used)")
    g.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    g.add_argument("--baseline", metavar="RUN_DIR|last-pass",
                   help="run to measure regression thresholds against "
                   "(default: last-pass when a threshold has regression:)")
    g.set_defaults(func=cmd_gate)

    h = sub.add_parser("history", help="list past runs and gate re-evaluations, newest first",
                       description="The runs recorded in DIR/history.sqlite by 'loadgate run' and 'loadgate gate'.")
    h.add_argument("--out", default="reports", metavar="DIR", help="the --out folder of the runs (default: reports/)")
    h.add_argument("--requirement", metavar="REQ-…", help="only runs of this requirement")
    h.add_argument("--limit", type=_positive_int, default=50, metavar="N", help="at most N records (default: 50)")
    h.add_argument("--json", action="store_true", help="print the records as JSON")
    h.set_defaults(func=cmd_history)

    cp = sub.add_parser("compare", help="compare a candidate run with a baseline run from their raw samples",
                        description="Per request and per requirement: p50, p95, p99 and error rate, the change, its "
                        "95%% confidence interval and p-value, and a status. A regression is a change whose whole "
                        "interval lies beyond the tolerance. Exit 1 if any regression, else 0; 2 for bad input.")
    cp.add_argument("baseline", metavar="BASELINE", help="run directory of the baseline")
    cp.add_argument("candidate", metavar="CANDIDATE", help="run directory of the candidate")
    cp.add_argument("--json", action="store_true", help="print the loadgate.compare/1 document")
    cp.add_argument("--tolerance-latency", type=_tolerance, default=0.10, metavar="PCT",
                    help="relative change of a percentile tolerated, e.g. 10%% (default: 10%%)")
    cp.add_argument("--tolerance-errors", type=_tolerance, default=0.005, metavar="PP",
                    help="change of the error rate tolerated, in percentage points, e.g. 0.5%% (default: 0.5%%)")
    cp.set_defaults(func=cmd_compare)

    rp = sub.add_parser("report", help="re-render report.html from a run directory", epilog=EPILOG)
    rp.add_argument("run_dir", metavar="RUN_DIR")
    rp.add_argument("-o", "--output", metavar="FILE", help="where to write (default: RUN_DIR/report.html)")
    rp.set_defaults(func=cmd_report)

    c = sub.add_parser("check", help="validate thresholds, scenarios and the traceability between them",
                       description="Parse every threshold file and import every scenario; every threshold "
                       "file's requirement must have tagged tasks and every requirement tag a threshold file. "
                       "Exit 0 when all is consistent, 2 otherwise.")
    c.add_argument("--scenarios", default="scenarios", metavar="PATH")
    c.add_argument("--thresholds", default="thresholds", metavar="PATH")
    c.set_defaults(func=cmd_check)

    w = sub.add_parser("worker", help="join a loadgate master from another machine as a load generator",
                       description="Run a Locust worker with the loadgate recorder, loading the same scenarios as "
                       "the master; its samples travel to the master, which writes the run directory.")
    w.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the master's address (port default 5557)")
    w.add_argument("--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)")
    w.set_defaults(func=cmd_worker)

    t = sub.add_parser("target", help="serve the embedded demo target until stopped",
                       description="A real HTTP server with realistic latency and a small error rate, on loopback.")
    t.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    t.add_argument("--port", type=int, default=8089, help="port; 0 picks a free one (default: 8089)")
    t.add_argument("--latency-scale", type=_positive_float, default=1.0, metavar="X",
                   help="multiply every simulated latency by X (default: 1)")
    t.set_defaults(func=cmd_target)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LoadgateError as e:
        print(f"loadgate {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the machine, not the user: a full disk, a folder that went away
        where = e.filename or "output"
        print(f"loadgate {args.command}: error: cannot write {where}: {e.strerror or e}; free some space or "
              "choose another --out; what was recorded so far is kept", file=sys.stderr)
        return EXIT_INCONCLUSIVE
    except KeyboardInterrupt:
        print(f"loadgate {args.command}: interrupted", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())

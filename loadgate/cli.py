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
    from loadgate.data.signing import load_signing_key
    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.history.baseline import check_spec as check_baseline
    from loadgate.run.keys import load_worker_key
    from loadgate.outputs.writers import format_table
    from loadgate.run.options import resolve_options
    from loadgate.run.runner import execute
    from loadgate.run.scenarios import check_latency, check_requirements, load_catalog

    reqs = list(dict.fromkeys(args.requirement))
    files = load_thresholds(args.thresholds)
    catalog = load_catalog(args.scenarios)
    check_requirements(catalog, reqs, args.scenarios)
    worker_key = load_worker_key(args.worker_key)
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(f"--requirement {missing[0]}: no threshold file in {args.thresholds} says "
                          f"'requirement: {missing[0]}'; add {os.path.join(args.thresholds, missing[0])}.yaml")
    flags = {"requirements": reqs, "users": args.users, "spawn_rate": args.spawn_rate,
             "duration": args.duration, "warmup": args.warmup, "host": args.host,
             "scenarios": args.scenarios, "thresholds": args.thresholds, "out": args.out,
             "workers": args.workers, "strict": args.strict, "latency_scale": args.target_latency_scale,
             "expect_workers": args.expect_workers, "master_bind": args.master_bind,
             "worker_wait": args.worker_wait, "allow_worker_loss": args.allow_worker_loss,
             "worker_key": worker_key, "insecure_workers": args.insecure_workers,
             "ui": args.ui, "ui_port": args.ui_port}
    opts = resolve_options(flags, files, args.command_line)
    key = load_signing_key(args.signing_key)  # a bad key stops us before the run, not after it
    used = {r: files[r] for r in reqs}
    check_latency(catalog, used.values())
    check_baseline(args.baseline)
    _check_prometheus_url(used, args.prometheus)
    _warn_traps(opts, catalog, used)
    if opts.ui:
        return _run_ui(opts, catalog, used, args, key)
    rec = execute(opts, catalog, used, _say, worker_key=worker_key, prometheus=args.prometheus)
    for w in rec.meta.get("refused_workers") or []:
        _say(f"loadgate: refused a worker at {w['address']} ({w['reason']}, {w['attempts']} attempts); see run.json")
    _say(f"loadgate: recorded {rec.samples} samples; analysing")
    verdict, _summary, _run = gate_run(rec.run_dir, used, strict=args.strict, kind="run", baseline=args.baseline,
                                       say=_say, command=args.command_line, key=key, prometheus=args.prometheus)
    print(format_table(verdict, color=sys.stdout.isatty()))
    print(f"run directory: {rec.run_dir}  (report.html, verdict.json, junit.xml, summary.md, samples.parquet)")
    return verdict.exit_code


def _check_prometheus_url(files: dict, url: str | None) -> None:
    """A Prometheus resource threshold needs a server: say so before the run, not after it."""
    for tf in files.values():
        for t in tf.thresholds:
            if t.resource is not None and t.resource.source == "prometheus" and not (url or t.resource.prometheus):
                raise ConfigError(f"{t.source}: load.resources.prometheus: missing for metric {t.metric}; "
                                  "set the server's URL there or pass --prometheus URL")


def _warn_traps(opts, catalog, used) -> None:
    """Under ``select: tasks``: one warning per TaskSet the tag filter leaves without a way out."""
    from loadgate.run.traps import trap_warnings

    if opts.select == "tasks":
        for line in trap_warnings(catalog, list(opts.requirements), {r: f.path for r, f in used.items()}):
            _say(f"loadgate: warning: {line}")


def _run_ui(opts, catalog, used, args: argparse.Namespace, key) -> int:
    """``run --ui``: each test of the web UI session is gated as it stops; its verdict printed here."""
    from loadgate.evaluate import gate_run
    from loadgate.outputs.writers import format_table
    from loadgate.run.ui import serve

    def gate(run_dir: str) -> int:
        try:
            verdict, _summary, _run = gate_run(run_dir, used, strict=args.strict, kind="run",
                                               baseline=args.baseline, say=_say, command=args.command_line,
                                               key=key, prometheus=args.prometheus)
        except LoadgateError as e:  # one test's trouble does not end the session
            _say(f"loadgate run: error: {e}")
            return e.exit_code
        print(format_table(verdict, color=sys.stdout.isatty()), flush=True)
        print(f"run directory: {run_dir}  (report: {os.path.join(run_dir, 'report.html')})", flush=True)
        return verdict.exit_code

    return serve(opts, catalog, used, _say, gate)


def cmd_gate(args: argparse.Namespace) -> int:
    from loadgate.data import rundir
    from loadgate.data.signing import load_signing_key
    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.outputs.writers import format_table

    rundir.check_run_dir(args.run_dir)
    path = args.thresholds
    if path is None:
        run = rundir.read_json(args.run_dir, rundir.RUN)
        recorded = (run.get("options") or {}).get("thresholds")
        path = recorded if recorded and os.path.exists(recorded) else "thresholds"
    key = load_signing_key(args.signing_key)
    verdict, _summary, _run = gate_run(args.run_dir, load_thresholds(path), strict=args.strict,
                                       baseline=args.baseline, say=_say, command=args.command_line, key=key,
                                       prometheus=args.prometheus)
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
    from loadgate.analysis.schedule import SCHEDULE_COLUMNS, with_schedule
    from loadgate.analysis.summary import COLUMNS, summarize
    from loadgate.analysis.table import format_summary_table
    from loadgate.analysis.window import parse_window
    from loadgate.data.samples import read_samples

    table = read_samples(args.samples, [*COLUMNS, *SCHEDULE_COLUMNS], dictionary=True)
    window = None
    if args.window:
        ts = table.column("timestamp")
        if len(ts) == 0:
            raise ConfigError(f"{args.samples}: no samples, so --window has nothing to cut")
        import pyarrow.compute as pc
        try:
            window = parse_window(args.window, pc.min(ts).as_py(), pc.max(ts).as_py())
        except ValueError as e:
            raise ConfigError(f"--window {args.window}: {e}") from None
    summary = with_schedule(summarize(table, window, series=args.json), table, window, series=args.json)
    if args.json:
        sys.stdout.write(json.dumps(summary))  # no indent: keeps the C encoder (0.1 s of 1.4 s at 10M); pipe to jq to read
        print()
    else:
        print(format_summary_table(summary))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from loadgate.data.signing import load_signing_key
    from loadgate.outputs.report import write_run_report

    key = load_signing_key(args.signing_key)
    print(write_run_report(args.run_dir, args.output, command=args.command_line, key=key))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from loadgate.data.manifest import verify
    from loadgate.data.signing import load_public_key

    public = load_public_key(args.public_key) if args.public_key else None
    v = verify(args.run_dir, public)
    for line in v.problems:
        print(f"{args.run_dir}: {line}")
    if v.problems:
        print(f"loadgate verify: {args.run_dir} does not match its manifest ({len(v.problems)} problem(s))",
              file=sys.stderr)
        return 1
    signed = (f"signed by Ed25519 key {v.signed_by}" + (" (--public-key)" if public else
              "; pass --public-key to check it is your key")) if v.signed_by else "not signed"
    print(f"{args.run_dir}: intact: {v.files} files and run.json match the manifest "
          f"(evidence sha256 {v.evidence}); {signed}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from loadgate.run.check import check

    ok, lines = check(args.scenarios, args.thresholds, args.prometheus or None,
                      ask_prometheus=args.prometheus is not None, fmt=args.format)
    for line in lines:
        print(line)
    return 0 if ok else EXIT_CONFIG


def cmd_init(args: argparse.Namespace) -> int:
    from loadgate.outputs.scaffold import SCRIPT, init_repository

    result = init_repository(args.directory, args.ci, force=args.force, spec=args.spec)
    for path in result.written:
        print(f"wrote {os.path.normpath(os.path.join(args.directory, path))}")
    print(f"{SCRIPT} installs loadgate from: {result.spec} (LOADGATE_SPEC overrides it)")
    if result.spec_is_local:
        _say(f"loadgate init: note: {result.spec} is a path on this machine; on a CI runner set LOADGATE_SPEC "
             "to a package name, a VCS URL (git+https://…) or a wheel it can reach, or re-run with --spec")
    cd = "" if os.path.abspath(args.directory) == os.getcwd() else f"cd {args.directory} && "
    print(f"next: {cd}./{SCRIPT} check && ./{SCRIPT} --users=1000 --requirement=REQ-PERF-001")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from loadgate.run.keys import load_worker_key
    from loadgate.run.runner import run_worker
    from loadgate.run.scenarios import discover

    return run_worker(args.master, discover(args.scenarios), _say, worker_key=load_worker_key(args.worker_key))


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
                       "exit with the verdict's code. Flags override the load: block of the threshold file. "
                       "With --ui, explore in Locust's web UI instead: every test started and stopped there "
                       "is recorded, gated and reported as its own run directory.",
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
    r.add_argument("--worker-key", metavar="FILE",
                   help="shared secret of master and workers (default: $LOADGATE_WORKER_KEY): the channel is "
                   "authenticated and encrypted (ZeroMQ CURVE); workers without it are refused. Needed when "
                   "--master-bind is beyond loopback")
    r.add_argument("--insecure-workers", action="store_true",
                   help="let --master-bind listen beyond loopback without a worker key; the verdict says so")
    r.add_argument("--allow-worker-loss", action="store_true",
                   help="a worker lost mid-run does not make the verdict inconclusive (it is still reported)")
    r.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    r.add_argument("--ui", action="store_true",
                   help="explore in Locust's web UI on 127.0.0.1 instead of running headless: each test started "
                   "and stopped there becomes its own run directory, gated and printed here; Ctrl-C ends the "
                   "session with the last test's exit code (0 when none ran)")
    r.add_argument("--ui-port", type=_positive_int, metavar="N", help="port of the web UI (default: 8089)")
    r.add_argument("--target-latency-scale", type=_positive_float, default=1.0, metavar="X",
                   help="embedded demo target only: multiply its latencies by X (a slower build)")
    r.add_argument("--baseline", metavar="RUN_DIR|last-pass",
                   help="run to measure regression thresholds against and compare with (default: last-pass, the "
                   "newest passing run in --out's history, when a threshold has regression:)")
    r.add_argument("--signing-key", metavar="FILE",
                   help="Ed25519 private key (PEM) that signs run.json's manifest (default: $LOADGATE_SIGNING_KEY)")
    r.add_argument("--prometheus", metavar="URL",
                   help="Prometheus server for resource thresholds (overrides load.resources.prometheus)")
    r.set_defaults(func=cmd_run)

    a = sub.add_parser("analyze", help="summarise a samples file (ours or Locust's CSV request log)",
                       description="Exact percentiles, error rates and throughput of a samples file, "
                       "per request and per requirement.", epilog=EPILOG)
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
    g.add_argument("--signing-key", metavar="FILE",
                   help="Ed25519 private key (PEM) that signs the re-sealed manifest (default: $LOADGATE_SIGNING_KEY)")
    g.add_argument("--prometheus", metavar="URL",
                   help="Prometheus server for resource thresholds (overrides load.resources.prometheus)")
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
    rp.add_argument("-o", "--output", metavar="FILE", help="where to write (default: RUN_DIR/report.html, which "
                    "re-seals run.json's manifest)")
    rp.add_argument("--signing-key", metavar="FILE",
                    help="Ed25519 private key (PEM) that signs the re-sealed manifest (default: $LOADGATE_SIGNING_KEY)")
    rp.set_defaults(func=cmd_report)

    v = sub.add_parser("verify", help="check that a run directory is as loadgate wrote it (manifest, signature)",
                       description="Recompute the SHA-256 of every file of RUN_DIR against the manifest at the end "
                       "of run.json, and its signature. Exit 0 intact; 1 naming each file that changed, is missing "
                       "or was added (or a signature that does not hold); 2 when RUN_DIR is not a run directory.")
    v.add_argument("run_dir", metavar="RUN_DIR")
    v.add_argument("--public-key", metavar="FILE",
                   help="Ed25519 public key (PEM) the manifest must be signed with; without it, a signature is "
                   "checked against the key it names")
    v.set_defaults(func=cmd_verify)

    c = sub.add_parser("check", help="validate thresholds, scenarios and the traceability between them",
                       description="Parse every threshold file and import every scenario; every threshold "
                       "file's requirement must have tagged tasks and every requirement tag a threshold file. "
                       "Exit 0 when all is consistent, 2 otherwise.")
    c.add_argument("--scenarios", default="scenarios", metavar="PATH")
    c.add_argument("--thresholds", default="thresholds", metavar="PATH")
    c.add_argument("--format", choices=("plain", "github"), default="plain",
                   help="how problems print: plain lines (default), or GitHub Actions annotations "
                   "(::error file=…,line=…::) shown on the file's line in a pull request")
    c.add_argument("--prometheus", nargs="?", const="", metavar="URL",
                   help="also try every Prometheus resource query on the server (URL, else each file's "
                   "load.resources.prometheus): bad PromQL, no series or several series are errors")
    c.set_defaults(func=cmd_check)

    i = sub.add_parser("init", help="add a performance gate to a repository: script, example, thresholds, CI",
                       description="Write scripts/performance-test.sh (installs loadgate on a fresh runner, then "
                       "runs the gate), scenarios/example.py, thresholds/REQ-PERF-001.yaml, reports/.gitignore and "
                       "the CI files. Never overwrites a file: exit 2 naming those that exist, unless --force.",
                       epilog="exit codes: 0 written, 2 a file exists already (nothing written) or a bad option")
    i.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the repository (default: .)")
    i.add_argument("--ci", choices=("github", "gitlab", "jenkins", "all", "none"), default="github",
                   help="CI files to write: .github/workflows/performance-gate.yml, .gitlab-ci.yml, Jenkinsfile "
                   "(default: github)")
    i.add_argument("--force", action="store_true", help="overwrite files that exist")
    i.add_argument("--spec", metavar="SPEC",
                   help="what the script installs loadgate from: loadgate==X, git+https://…, a wheel's path "
                   "(default: how this loadgate was installed)")
    i.set_defaults(func=cmd_init)

    w = sub.add_parser("worker", help="join a loadgate master from another machine as a load generator",
                       description="Run a Locust worker with the loadgate recorder, loading the same scenarios as "
                       "the master; its samples travel to the master, which writes the run directory.")
    w.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the master's address (port default 5557)")
    w.add_argument("--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)")
    w.add_argument("--worker-key", metavar="FILE",
                   help="the master's shared worker key (default: $LOADGATE_WORKER_KEY)")
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
    args.command_line = ["loadgate", *(sys.argv[1:] if argv is None else argv)]  # for run.json and its audit log
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

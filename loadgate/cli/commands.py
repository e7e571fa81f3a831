"""The ``loadgate`` commands: each parses nothing, calls the library, prints, and returns its exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys

from loadgate.data.run_doc import read_run
from loadgate.errors import EXIT_CONFIG, ConfigError, LoadgateError


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from loadgate.data.signing import load_signing_key
    from loadgate.evaluate import gate_run, mark_interrupted
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.history.baseline import check_spec as check_baseline
    from loadgate.shared.keys import load_worker_key
    from loadgate.outputs.writers import format_table
    from loadgate.run.options import resolve_options
    from loadgate.run.interrupt import Interrupt, Interrupted
    from loadgate.run.drivers import run_driver
    from loadgate.run.session import Session
    from loadgate.scenarios.catalog import check_latency, check_requirements, load_catalog

    reqs = list(dict.fromkeys(args.requirement))
    files = load_thresholds(args.thresholds)
    catalog = load_catalog(args.scenarios)
    check_requirements(catalog, reqs, args.scenarios)
    worker_key = load_worker_key(args.worker_key)
    missing = [r for r in reqs if r not in files]
    if missing:
        raise ConfigError(
            f"--requirement {missing[0]}: no threshold file in {args.thresholds} says "
            f"'requirement: {missing[0]}'; add {os.path.join(args.thresholds, missing[0])}.yaml"
        )
    flags = {
        "requirements": reqs,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration": args.duration,
        "warmup": args.warmup,
        "host": args.host,
        "scenarios": args.scenarios,
        "thresholds": args.thresholds,
        "out": args.out,
        "workers": args.workers,
        "strict": args.strict,
        "latency_scale": args.target_latency_scale,
        "expect_workers": args.expect_workers,
        "master_bind": args.master_bind,
        "worker_wait": args.worker_wait,
        "allow_worker_loss": args.allow_worker_loss,
        "worker_key": worker_key,
        "insecure_workers": args.insecure_workers,
        "ui": args.ui,
        "ui_port": args.ui_port,
        "arrival_rate": args.arrival_rate,
        "max_users": args.max_users,
    }
    opts = resolve_options(flags, files, args.command_line)
    key = load_signing_key(args.signing_key)  # a bad key stops us before the run, not after it
    used = {r: files[r] for r in reqs}
    check_latency(catalog, used.values())
    check_baseline(args.baseline)
    _check_prometheus_url(used, args.prometheus)
    _warn_traps(opts, catalog, used)
    if args.ui:
        if args.notify:
            _say("loadgate: warning: --notify is ignored with --ui: an exploration session sends no notifications")
        return _run_ui(opts, catalog, used, args, key)
    notifier = _notifier(args, used, reqs, "run")
    driver = run_driver({**flags, "prometheus": args.prometheus}, used)
    rec = None
    with Interrupt(raising=True) as guard:  # the run turns a signal into a stop; after it, into exit 3
        try:
            rec = Session(opts, catalog, used, _say, driver, worker_key=worker_key).run()
            for w in rec.meta.get("refused_workers") or []:
                _say(
                    f"loadgate: refused a worker at {w['address']} ({w['reason']}, {w['attempts']} attempts); "
                    "see run.json"
                )
            _say(f"loadgate: recorded {rec.samples} samples; analysing")
            verdict, _summary, _run = gate_run(
                rec.run_dir,
                used,
                strict=args.strict,
                kind="run",
                baseline=args.baseline,
                say=_say,
                command=args.command_line,
                key=key,
                prometheus=args.prometheus,
                interrupt=guard,
                before_seal=notifier,
            )
        except Interrupted as e:  # (one that came before gate_run took over is placed here)
            if rec is not None:
                mark_interrupted(rec.run_dir, e, "analysing", args.strict)
            raise
        print(format_table(verdict, color=sys.stdout.isatty()))
        _print_changes(verdict.changes)
        print(f"run directory: {rec.run_dir}  (report.html, verdict.json, junit.xml, summary.md, samples.parquet)")
        _late_signal(guard)
    return verdict.exit_code


def _late_signal(guard) -> None:
    if guard.reason:
        _say(f"loadgate: {guard.reason} after the verdict was final; the verdict stands")


def _check_prometheus_url(files: dict, url: str | None) -> None:
    """A Prometheus resource threshold needs a server: say so before the run, not after it."""
    for tf in files.values():
        for t in tf.thresholds:
            if t.resource is not None and t.resource.source == "prometheus" and not (url or t.resource.prometheus):
                raise ConfigError(
                    f"{t.source}: load.resources.prometheus: missing for metric {t.metric}; "
                    "set the server's URL there or pass --prometheus URL"
                )


def _warn_traps(opts, catalog, used) -> None:
    """Under ``select: tasks``: one warning per TaskSet the tag filter leaves without a way out; and one when
    there are more alerts than the live view comes round to in its window."""
    from loadgate.scenarios.check import count_warnings
    from loadgate.scenarios.traps import trap_warnings

    if opts.select == "tasks":
        for line in trap_warnings(catalog, list(opts.requirements), {r: f.path for r, f in used.items()}):
            _say(f"loadgate: warning: {line}")
    for line in count_warnings(used):  # as many alerts as the live view cannot come round to in its window
        _say(f"loadgate: {line}")


def _run_ui(opts, catalog, used, args: argparse.Namespace, key) -> int:
    """``run --ui``: each test of the web UI session is gated as it stops; its verdict printed here."""
    from loadgate.evaluate import gate_run
    from loadgate.outputs.writers import format_table
    from loadgate.run.drivers.ui import DEFAULT_PORT, WebUi
    from loadgate.run.session import Session

    def gate(run_dir: str) -> int:
        try:
            verdict, _summary, _run = gate_run(
                run_dir,
                used,
                strict=args.strict,
                kind="run",
                baseline=args.baseline,
                say=_say,
                command=args.command_line,
                key=key,
                prometheus=args.prometheus,
            )
        except LoadgateError as e:  # one test's trouble does not end the session
            _say(f"loadgate run: error: {e}")
            return e.exit_code
        print(format_table(verdict, color=sys.stdout.isatty()), flush=True)
        print(f"run directory: {run_dir}  (report: {os.path.join(run_dir, 'report.html')})", flush=True)
        return verdict.exit_code

    driver = WebUi(args.ui_port or DEFAULT_PORT, gate)
    Session(opts, catalog, used, _say, driver).run()
    return driver.last_code


def cmd_capacity(args: argparse.Namespace) -> int:
    from loadgate.evaluate import gate_capacity
    from loadgate.run.capacity import prepare, search_capacity

    opts, plan, catalog, used = prepare(vars(args), args.command_line)
    result = search_capacity(opts, plan, catalog, used, _say)
    verdict, _summary, _run = gate_capacity(
        result.run_dir,
        used,
        result.doc,
        result.best_verdict,
        inconclusive=result.inconclusive,
        command=args.command_line,
    )
    for reason in verdict.reasons:
        print(reason)
    _print_plan(result.run_dir)
    print(f"verdict: {verdict.verdict.upper()} (exit {verdict.exit_code})")
    print(f"run directory: {result.run_dir}  (capacity.json, capacity.md, report.html, verdict.json, samples.parquet)")
    return verdict.exit_code


def _print_plan(run_dir: str) -> None:
    """The capacity plan's line (headroom, runway), when the thresholds declare a peak."""
    from loadgate.data import rundir
    from loadgate.outputs.capacity_md import summary_line

    line = summary_line(rundir.read_json(run_dir, rundir.CAPACITY).get("planning") or {})
    if line:
        print(line)


def cmd_gate(args: argparse.Namespace) -> int:
    from loadgate.data import rundir
    from loadgate.data.signing import load_signing_key
    from loadgate.evaluate import gate_run, mark_interrupted
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.outputs.writers import format_table
    from loadgate.run.interrupt import Interrupt, Interrupted

    if not args.run_dir:
        raise ConfigError("give the run directory to gate (RUN_DIR), or --from FORMAT:FILE to import and gate a file")
    rundir.check_run_dir(args.run_dir)
    path = args.thresholds
    if path is None:
        run = read_run(args.run_dir)
        recorded = (run.get("options") or {}).get("thresholds")
        path = recorded if recorded and os.path.exists(recorded) else "thresholds"
    key = load_signing_key(args.signing_key)
    files = load_thresholds(path)
    if os.path.isfile(os.path.join(args.run_dir, rundir.CAPACITY)):  # judged as the search judged it
        from loadgate.evaluate import regate_capacity

        if args.strict or args.baseline or args.prometheus:
            _say(
                "loadgate gate: note: --strict, --baseline and --prometheus do not apply to a capacity run; it is "
                "judged as the search judged it (its baseline: the newest earlier passing capacity run)"
            )
        verdict, _summary, _run = regate_capacity(args.run_dir, files, command=args.command_line, key=key, say=_say)
        for reason in verdict.reasons:
            print(reason)
        _print_plan(args.run_dir)
        print(f"verdict: {verdict.verdict.upper()} (exit {verdict.exit_code})")
        return verdict.exit_code
    reqs = read_run(args.run_dir).get("requirements") or []
    with Interrupt(raising=True) as guard:
        try:
            verdict, _summary, _run = gate_run(
                args.run_dir,
                files,
                strict=args.strict,
                baseline=args.baseline,
                say=_say,
                command=args.command_line,
                key=key,
                prometheus=args.prometheus,
                interrupt=guard,
                before_seal=_notifier(args, files, reqs, "gate"),
            )
        except Interrupted as e:  # before gate_run began: nothing was rewritten
            mark_interrupted(args.run_dir, e, "analysing", args.strict, files=False)
            raise
        print(format_table(verdict, color=sys.stdout.isatty()))
        _print_changes(verdict.changes)
        _late_signal(guard)
    return verdict.exit_code


def _notifier(args: argparse.Namespace, files, reqs, by: str):
    """The notifications sent once the verdict is written; None with --no-notify or none declared."""
    from loadgate.notify.send import hook

    if args.no_notify:
        return None
    return hook(files, reqs, args.notify, args.notify_on, args.report_url, args.notify_timeout, _say, by)


def cmd_analyze(args: argparse.Namespace) -> int:
    from loadgate.analysis.schedule import with_schedule
    from loadgate.analysis.summary import COLUMNS, summarize
    from loadgate.analysis.table import format_summary_table
    from loadgate.analysis.window import parse_window
    from loadgate.data.open_samples import open_samples, time_range

    source = open_samples(args.samples, COLUMNS)  # a file on disk: one row group at a time, memory bounded
    window = None
    if args.window:
        ends = time_range(source)
        if ends is None:
            raise ConfigError(f"{args.samples}: no samples, so --window has nothing to cut")
        try:
            window = parse_window(args.window, *ends)
        except ValueError as e:
            raise ConfigError(f"--window {args.window}: {e}") from None
    summary = with_schedule(summarize(source, window, series=args.json), source, window, series=args.json)
    if args.json:
        sys.stdout.write(
            json.dumps(summary)
        )  # no indent: keeps the C encoder (0.1 s of 1.4 s at 10M); pipe to jq to read
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
        print(
            f"loadgate verify: {args.run_dir} does not match its manifest ({len(v.problems)} problem(s))",
            file=sys.stderr,
        )
        return 1
    signed = (
        (
            f"signed by Ed25519 key {v.signed_by}"
            + (" (--public-key)" if public else "; pass --public-key to check it is your key")
        )
        if v.signed_by
        else "not signed"
    )
    print(
        f"{args.run_dir}: intact: {v.files} files and run.json match the manifest "
        f"(evidence sha256 {v.evidence}); {signed}"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from loadgate.scenarios.check import check

    ok, lines = check(
        args.scenarios,
        args.thresholds,
        args.prometheus or None,
        ask_prometheus=args.prometheus is not None,
        fmt=args.format,
    )
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
        _say(
            f"loadgate init: note: {result.spec} is a path on this machine; on a CI runner set LOADGATE_SPEC "
            "to a package name, a VCS URL (git+https://…) or a wheel it can reach, or re-run with --spec"
        )
    cd = "" if os.path.abspath(args.directory) == os.getcwd() else f"cd {args.directory} && "
    print(f"next: {cd}./{SCRIPT} check && ./{SCRIPT} --users=1000 --requirement=REQ-PERF-001")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from loadgate.shared.keys import load_worker_key
    from loadgate.run.worker import run_worker
    from loadgate.scenarios.catalog import discover

    return run_worker(args.master, discover(args.scenarios), _say, worker_key=load_worker_key(args.worker_key))


def cmd_target(args: argparse.Namespace) -> int:
    from loadgate.run.demo_target import serve

    serve(args.host, args.port, latency_scale=args.latency_scale)
    return 0


def _print_changes(changes: dict | None) -> None:
    from loadgate.trace.render import changes_lines

    for line in changes_lines(changes):
        print(line)

"""The ``loadgate`` argument parser: every command, flag and ``--help`` text, and the types that check them."""

from __future__ import annotations

import argparse
from typing import Any
from loadgate._version import __version__
from loadgate.cli.commands import (
    cmd_capacity,
    cmd_analyze,
    cmd_check,
    cmd_init,
    cmd_report,
    cmd_run,
    cmd_target,
    cmd_verify,
    cmd_worker,
)
from loadgate.cli.imports import add_import_flags, add_import_parser, cmd_gate_or_import
from loadgate.cli.records import cmd_compare, cmd_history, cmd_notify, cmd_trace
from loadgate.cli import arg_types as types
from loadgate.errors import EXIT_CONFIG

EPILOG = "exit codes: 0 pass (warnings allowed unless --strict), 1 gate failed, 2 usage or configuration error, 3 inconclusive"


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the command, as every loadgate error does."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _notify_flags(p: argparse.ArgumentParser, *, switch: bool = True) -> None:
    """--notify and its companions: for run, gate and notify."""
    p.add_argument(
        "--notify",
        action="append",
        metavar="URL|NAME",
        help="also send the verdict here (repeatable; $LOADGATE_NOTIFY adds space-separated more): a "
        "webhook URL, KIND:URL, the name of an environment variable holding the URL (SLACK_WEBHOOK_URL, "
        "slack:$SLACK_WEBHOOK_URL), or email:ADDRESS,… (SMTP from $LOADGATE_SMTP_*); KIND is slack, "
        "teams, webhook or email. See docs/notifications.md",
    )
    p.add_argument(
        "--notify-on",
        type=types.outcomes,
        default=("fail", "inconclusive", "recovered"),
        metavar="LIST",
        help="outcomes that send to the --notify targets: fail, warn, inconclusive, pass, recovered, "
        "regressed, resources (default: fail,inconclusive,recovered)",
    )
    p.add_argument(
        "--report-url",
        metavar="URL",
        help="where readers find the report (a CI artifact link; {run_id} is replaced by the run "
        "directory's name) (default: $LOADGATE_REPORT_URL, else the report's path)",
    )
    p.add_argument(
        "--notify-timeout",
        type=types.duration,
        metavar="TIME",
        help="time each notification may take, its tries and waits included (default: 20s)",
    )
    if switch:
        p.add_argument(
            "--no-notify",
            action="store_true",
            help="send nothing: ignore the threshold files' notify: entries, --notify and $LOADGATE_NOTIFY",
        )


def build_parser() -> argparse.ArgumentParser:
    """``loadgate``'s parser: one function per command below, in the order ``--help`` lists them."""
    p = _Parser(
        prog="loadgate",
        description="Load-testing quality gate: run tagged Locust scenarios, "
        "record every request, gate exact percentiles against YAML thresholds.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"loadgate {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _run_command,
        _capacity_command,
        _analyze_command,
        _gate_command,
        _import_command,
        _notify_command,
        _history_command,
        _compare_command,
        _report_command,
        _verify_command,
        _check_command,
        _trace_command,
        _init_command,
        _worker_command,
        _target_command,
    ):
        add(sub)
    return p


def _run_command(sub: Any) -> None:
    r = sub.add_parser(
        "run",
        help="run the scenarios of requirements headless, then analyse and gate",
        description="Run the Locust tasks tagged with the requirement IDs headless, record "
        "every request, analyse, gate against the thresholds, write a run directory and "
        "exit with the verdict's code. Flags override the load: block of the threshold file. "
        "With --ui, explore in Locust's web UI instead: every test started and stopped there "
        "is recorded, gated and reported as its own run directory.",
        epilog=EPILOG,
    )
    r.add_argument(
        "--requirement",
        action="append",
        required=True,
        metavar="REQ-…",
        help="requirement ID whose tagged tasks run (repeatable)",
    )
    r.add_argument(
        "--users", type=types.positive_int, help="concurrent users at full load (default: load.users, else 10)"
    )
    r.add_argument(
        "--spawn-rate",
        type=types.positive_float,
        metavar="R",
        help="users started per second (default: load.spawn_rate, else min(users, 100))",
    )
    r.add_argument(
        "--arrival-rate",
        type=types.rate,
        metavar="RATE",
        help="open model: start iterations at this rate, like 200/s or 12000/m, whatever the target does "
        "(each requirement; default: load.arrival); a start with no free user is dropped and counted, "
        "never queued. Not with --users",
    )
    r.add_argument(
        "--max-users",
        type=types.pool,
        metavar="N",
        help="open model: the pool of users that run the started iterations, all spawned at the start "
        "(default: load.arrival.max_users, else the peak rate times one second)",
    )
    r.add_argument(
        "--duration",
        type=types.duration,
        help="time at full user count, after ramp-up, e.g. 5m (default: load.duration, else 1m)",
    )
    r.add_argument(
        "--warmup",
        type=types.duration,
        help="time after ramp-up left out of analysis, e.g. 30s (default: load.warmup, else 0)",
    )
    r.add_argument("--host", help="target base URL; default: the scenario's host, else the embedded demo target")
    r.add_argument(
        "--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)"
    )
    r.add_argument(
        "--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)"
    )
    r.add_argument("--out", default="reports", metavar="DIR", help="where run directories go (default: reports/)")
    r.add_argument(
        "--workers",
        type=types.positive_int,
        default=1,
        metavar="N",
        help="load-generator processes; N > 1 runs a Locust master with N local workers (default: 1)",
    )
    r.add_argument(
        "--expect-workers",
        type=types.positive_int,
        default=0,
        metavar="N",
        help="run a Locust master that waits for N remote workers ('loadgate worker --master HOST:PORT')",
    )
    r.add_argument(
        "--master-bind",
        metavar="HOST:PORT",
        help="where the master listens for remote workers (default 127.0.0.1:5557; 0.0.0.0:5557 "
        "accepts workers from other machines)",
    )
    r.add_argument(
        "--worker-wait",
        type=types.duration,
        default=60.0,
        metavar="TIME",
        help="how long the master waits for --expect-workers to connect (default: 60s)",
    )
    r.add_argument(
        "--worker-key",
        metavar="FILE",
        help="shared secret of master and workers (default: $LOADGATE_WORKER_KEY): the channel is "
        "authenticated and encrypted (ZeroMQ CURVE); workers without it are refused. Needed when "
        "--master-bind is beyond loopback",
    )
    r.add_argument(
        "--insecure-workers",
        action="store_true",
        help="let --master-bind listen beyond loopback without a worker key; the verdict says so",
    )
    r.add_argument(
        "--allow-worker-loss",
        action="store_true",
        help="a worker lost mid-run does not make the verdict inconclusive (it is still reported)",
    )
    r.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    r.add_argument(
        "--ui",
        action="store_true",
        help="explore in Locust's web UI on 127.0.0.1 instead of running headless: each test started "
        "and stopped there becomes its own run directory, gated and printed here; Ctrl-C ends the "
        "session with the last test's exit code (0 when none ran)",
    )
    r.add_argument("--ui-port", type=types.positive_int, metavar="N", help="port of the web UI (default: 8089)")
    r.add_argument(
        "--target-latency-scale",
        type=types.positive_float,
        default=1.0,
        metavar="X",
        help="embedded demo target only: multiply its latencies by X (a slower build)",
    )
    r.add_argument(
        "--baseline",
        metavar="RUN_DIR|last-pass",
        help="run to measure regression thresholds against and compare with (default: last-pass, the "
        "newest passing run in --out's history, when a threshold has regression:)",
    )
    r.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) that signs run.json's manifest (default: $LOADGATE_SIGNING_KEY)",
    )
    r.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus server for resource thresholds (overrides load.resources.prometheus)",
    )
    _notify_flags(r)
    r.set_defaults(func=cmd_run)


def _capacity_command(sub: Any) -> None:
    cap = sub.add_parser(
        "capacity",
        help="find the most users (or iterations/s) the system carries within the requirement's alerts",
        description="One Locust run whose user count doubles from --start-users until a step "
        "fails, then bisects between the last passing and the first failing step until they are "
        "within --resolution. With --arrival-rate (or load.arrival in the threshold file) the steps "
        "are arrival rates offered by one pool of --max-users users, and a step whose load was not "
        "offered (more starts dropped than load.arrival.max_dropped) never passes. Each step's "
        "measured part is gated exactly like a run; a step whose "
        "confidence interval straddles an alert level is measured once more, then reported "
        "unresolved. Writes capacity.json (loadgate.capacity/1) beside the usual files. Exit 0 "
        "when a capacity was found, 1 when not even --start-users passed, 3 when the search could "
        "not bracket the limit (generator saturated, budget spent, interrupted).",
        epilog=EPILOG,
    )
    cap.add_argument(
        "--requirement",
        action="append",
        required=True,
        metavar="REQ-…",
        help="requirement ID whose tagged tasks run and whose alerts every step must hold (repeatable)",
    )
    cap.add_argument(
        "--start-users", type=types.positive_int, metavar="N", help="users of the first step (default: 10)"
    )
    cap.add_argument(
        "--max-users",
        type=types.positive_int,
        metavar="N",
        help="never more users than this; a pass there reports 'at least N' (default: 1000); with "
        "--arrival-rate, the pool that offers every rate, spawned once (default: load.arrival.max_users, "
        "else --max-rate times one second)",
    )
    cap.add_argument(
        "--arrival-rate",
        type=types.rate,
        metavar="RATE",
        help="search over arrival rate instead of users, from this rate (like 50/s, 3000/m; default: "
        "load.arrival's rate when the threshold file has one and --start-users is not given): the most "
        "iterations/s within the alerts",
    )
    cap.add_argument(
        "--max-rate",
        type=types.rate,
        metavar="RATE",
        help="with --arrival-rate: never a higher rate; a pass there reports 'at least' (default: 16 "
        "times the first rate)",
    )
    cap.add_argument(
        "--step-duration",
        type=types.duration,
        default=30.0,
        metavar="TIME",
        help="measured part of each step, after its settle part (max(2s, a quarter of it), longer "
        "after slow steps) (default: 30s)",
    )
    cap.add_argument(
        "--resolution",
        type=types.tolerance,
        default=0.10,
        metavar="PCT",
        help="stop when the passing and failing user counts are within this share (default: 10%%)",
    )
    cap.add_argument(
        "--budget",
        type=types.duration,
        default=1200.0,
        metavar="TIME",
        help="time for the whole search; a step that would not fit is not started (default: 20m)",
    )
    cap.add_argument("--host", help="target base URL; default: the scenario's host, else the embedded demo target")
    cap.add_argument(
        "--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)"
    )
    cap.add_argument(
        "--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)"
    )
    cap.add_argument("--out", default="reports", metavar="DIR", help="where run directories go (default: reports/)")
    cap.add_argument(
        "--workers",
        type=types.positive_int,
        default=1,
        metavar="N",
        help="load-generator processes (Locust master with N local workers when N > 1) (default: 1)",
    )
    cap.add_argument(
        "--target-latency-scale",
        type=types.positive_float,
        default=1.0,
        metavar="X",
        help="embedded demo target only: multiply its latencies by X",
    )
    cap.add_argument(
        "--release",
        metavar="LABEL",
        help="the build measured, as the capacity plan and 'loadgate history --capacity' name it "
        "(default: its git commit, else the run's start)",
    )
    cap.add_argument(
        "--release-date",
        type=types.date,
        metavar="DATE",
        help="the date of that build, YYYY-MM-DD or an ISO time in UTC, which the capacity trend is "
        "fitted against and the runway counts from (default: the run's start); for measuring an "
        "older release, or tests",
    )
    cap.set_defaults(func=cmd_capacity)


def _analyze_command(sub: Any) -> None:
    a = sub.add_parser(
        "analyze",
        help="summarise a samples file (ours or Locust's CSV request log)",
        description="Exact percentiles, error rates and throughput of a samples file, "
        "per request and per requirement. A Parquet file is read a batch of rows at a time: "
        "memory grows with the requests and seconds, not the samples (soak runs; paced users' latency "
        "from the schedule goes through a scratch file beside the samples, removed afterwards).",
        epilog="exit codes: 0 summarised, 2 not a samples file or a bad --window",
    )
    a.add_argument("samples", metavar="SAMPLES", help="samples.parquet, or a Locust csv_request_logger CSV")
    a.add_argument(
        "--window",
        metavar="START:END",
        help="analyse only this window: offsets from the first sample (30s:5m) or Unix times; either side may be empty",
    )
    a.add_argument("--json", action="store_true", help="print summary.json content instead of a table")
    a.set_defaults(func=cmd_analyze)


def _gate_command(sub: Any) -> None:
    g = sub.add_parser(
        "gate",
        help="re-evaluate thresholds against an existing run directory",
        description="Re-analyse a run directory's samples and re-evaluate thresholds; rewrites "
        "summary.json, verdict.json, junit.xml, summary.md and report.html. A capacity run directory "
        "(capacity.json) is judged again as a capacity run: its highest passing step from the samples, "
        "the capacity thresholds from capacity.json; capacity.md and the plan are rewritten.",
        epilog=EPILOG,
    )
    g.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        nargs="?",
        help="the run directory to analyse and gate again (or --from FORMAT:FILE)",
    )
    g.add_argument(
        "--from",
        dest="from_file",
        metavar="FORMAT:FILE",
        help="import another tool's results first (k6:results.json, jtl:results.jtl; .gz too) into a new "
        "run directory under --out, as 'loadgate import' does, and gate that; needs --requirement",
    )
    g.add_argument(
        "--out", default="reports", metavar="DIR", help="with --from: where the run directory goes (default: reports/)"
    )
    g.add_argument("--thresholds", metavar="PATH", help="threshold folder or file (default: the one the run used)")
    g.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    g.add_argument(
        "--baseline",
        metavar="RUN_DIR|last-pass",
        help="run to measure regression thresholds against (default: last-pass when a threshold has regression:)",
    )
    g.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) that signs the re-sealed manifest (default: $LOADGATE_SIGNING_KEY)",
    )
    g.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus server for resource thresholds (overrides load.resources.prometheus)",
    )
    _notify_flags(g)
    add_import_flags(g, types.duration)
    g.set_defaults(func=cmd_gate_or_import)


def _import_command(sub: Any) -> None:
    add_import_parser(sub, types.duration, _notify_flags, EPILOG)


def _notify_command(sub: Any) -> None:
    n = sub.add_parser(
        "notify",
        help="send an existing run's verdict notifications (again)",
        description="Send the notifications of a gated run directory, as 'run' would have after its "
        "verdict: to the threshold files' notify: entries whose on: holds, and to --notify / "
        "$LOADGATE_NOTIFY. For a pipeline step after the artifacts are uploaded, with --report-url. "
        "Each outcome is recorded in run.json, which is re-sealed.",
        epilog="exit codes: 0 every notification delivered (or none called for), 1 one could not be "
        "delivered, 2 usage or configuration error",
    )
    n.add_argument("run_dir", metavar="RUN_DIR", help="the gated run directory whose verdict to send")
    n.add_argument("--thresholds", metavar="PATH", help="threshold folder or file (default: the one the run used)")
    n.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) that signs the re-sealed manifest (default: $LOADGATE_SIGNING_KEY)",
    )
    _notify_flags(n, switch=False)
    n.set_defaults(func=cmd_notify)


def _history_command(sub: Any) -> None:
    h = sub.add_parser(
        "history",
        help="list past runs and gate re-evaluations, newest first",
        description="The runs recorded in DIR/history.sqlite by 'loadgate run', 'loadgate capacity' "
        "and 'loadgate gate'.",
    )
    h.add_argument("--out", default="reports", metavar="DIR", help="the --out folder of the runs (default: reports/)")
    h.add_argument("--requirement", metavar="REQ-…", help="only runs of this requirement")
    h.add_argument("--limit", type=types.positive_int, default=50, metavar="N", help="at most N records (default: 50)")
    h.add_argument("--json", action="store_true", help="print the records as JSON")
    h.add_argument(
        "--capacity",
        action="store_true",
        help="list the capacity runs instead, oldest release first: capacity found, the next step "
        "that did not pass, knee, req/s at capacity, peak, resources per user, commit, verdict",
    )
    h.set_defaults(func=cmd_history)


def _compare_command(sub: Any) -> None:
    cp = sub.add_parser(
        "compare",
        help="compare a candidate run with a baseline run from their raw samples",
        description="Per request and per requirement: p50, p95, p99 and error rate, the change, its "
        "95%% confidence interval and p-value, and a status. A regression is a change whose whole "
        "interval lies beyond the tolerance. Exit 1 if any regression, else 0; 2 for bad input.",
    )
    cp.add_argument("baseline", metavar="BASELINE", help="run directory of the baseline")
    cp.add_argument("candidate", metavar="CANDIDATE", help="run directory of the candidate")
    cp.add_argument("--json", action="store_true", help="print the loadgate.compare/1 document")
    cp.add_argument(
        "--tolerance-latency",
        type=types.tolerance,
        default=0.10,
        metavar="PCT",
        help="relative change of a percentile tolerated, e.g. 10%% (default: 10%%)",
    )
    cp.add_argument(
        "--tolerance-errors",
        type=types.tolerance,
        default=0.005,
        metavar="PP",
        help="change of the error rate tolerated, in percentage points, e.g. 0.5%% (default: 0.5%%)",
    )
    cp.set_defaults(func=cmd_compare)


def _report_command(sub: Any) -> None:
    rp = sub.add_parser(
        "report",
        help="re-render report.html from a run directory",
        description="Render report.html again from a run directory's files (samples, summary, "
        "verdict, run.json). Written into the run directory, it re-seals run.json's manifest; "
        "with -o elsewhere, nothing in the run directory changes.",
        epilog="exit codes: 0 written, 2 not a run directory or an unreadable file, 3 the "
        "output could not be written (a full disk) or interrupted",
    )
    rp.add_argument("run_dir", metavar="RUN_DIR", help="the run directory whose report to render")
    rp.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write (default: RUN_DIR/report.html, which re-seals run.json's manifest)",
    )
    rp.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) that signs the re-sealed manifest (default: $LOADGATE_SIGNING_KEY)",
    )
    rp.set_defaults(func=cmd_report)


def _verify_command(sub: Any) -> None:
    v = sub.add_parser(
        "verify",
        help="check that a run directory is as loadgate wrote it (manifest, signature)",
        description="Recompute the SHA-256 of every file of RUN_DIR against the manifest at the end "
        "of run.json, and its signature. Exit 0 intact; 1 naming each file that changed, is missing "
        "or was added (or a signature that does not hold); 2 when RUN_DIR is not a run directory, or is one whose "
        "run did not finish (killed, interrupted: 'loadgate gate RUN_DIR' analyses and seals it).",
    )
    v.add_argument("run_dir", metavar="RUN_DIR", help="the run directory to check")
    v.add_argument(
        "--public-key",
        metavar="FILE",
        help="Ed25519 public key (PEM) the manifest must be signed with; without it, a signature is "
        "checked against the key it names",
    )
    v.set_defaults(func=cmd_verify)


def _check_command(sub: Any) -> None:
    c = sub.add_parser(
        "check",
        help="validate thresholds, scenarios and the traceability between them",
        description="Parse every threshold file and import every scenario; every threshold "
        "file's requirement must have tagged tasks and every requirement tag a threshold file. "
        "Exit 0 when all is consistent, 2 otherwise.",
    )
    c.add_argument(
        "--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)"
    )
    c.add_argument(
        "--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)"
    )
    c.add_argument(
        "--format",
        choices=("plain", "github"),
        default="plain",
        help="how problems print: plain lines (default), or GitHub Actions annotations "
        "(::error file=…,line=…::) shown on the file's line in a pull request",
    )
    c.add_argument(
        "--prometheus",
        nargs="?",
        const="",
        metavar="URL",
        help="also try every Prometheus resource query on the server (URL, else each file's "
        "load.resources.prometheus): bad PromQL, no series or several series are errors",
    )
    c.set_defaults(func=cmd_check)


def _trace_command(sub: Any) -> None:
    tr = sub.add_parser(
        "trace",
        help="check that every commit since REF references a requirement ID",
        description="Read git log from REF to HEAD and list the requirement IDs each commit "
        "references (in its message, or a 'Requirement: REQ-…' trailer). A commit is flagged when "
        "it references none, references an ID that no threshold file, scenario tag or Kubernetes "
        "requirement-id annotation defines, or changes a requirement's threshold or scenario file "
        "without naming that requirement. Merge commits are skipped. Exit 0 when every commit is "
        "traced, 1 when some are not, 2 on a usage error (not a repository, unknown REF).",
    )
    tr.add_argument(
        "--since",
        metavar="REF",
        help="trace the commits after REF (default: the commit of the last passing run in "
        "--out's history.sqlite, else the merge base with the default branch)",
    )
    tr.add_argument(
        "--pattern",
        metavar="REGEX",
        help=r"what a requirement ID looks like in a message; its group 'id' or only group, else the "
        r"whole match (default: \b(?:REQ|OR)-[A-Z0-9]+(?:-[A-Z0-9]+)*\b)",
    )
    tr.add_argument(
        "--allow",
        action="append",
        metavar="REGEX",
        help="skip commits whose 'Author <email>' matches REGEX, e.g. 'dependabot\\[bot\\]' (repeatable)",
    )
    tr.add_argument("--merges", action="store_true", help="check merge commits too (default: skipped)")
    tr.add_argument(
        "--format",
        choices=("plain", "github", "json"),
        default="plain",
        help="plain lines (default), GitHub Actions annotations (::error …::), or one JSON document",
    )
    tr.add_argument(
        "--ids",
        action="store_true",
        help="print every requirement ID and where it is defined (thresholds, scenario, manifest); no commit is read",
    )
    tr.add_argument(
        "--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)"
    )
    tr.add_argument(
        "--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)"
    )
    tr.add_argument(
        "--out",
        default="reports",
        metavar="DIR",
        help="the --out folder whose history.sqlite has the last passing run (default: reports/)",
    )
    tr.set_defaults(func=cmd_trace)


def _init_command(sub: Any) -> None:
    i = sub.add_parser(
        "init",
        help="add a performance gate to a repository: script, example, thresholds, CI",
        description="Write scripts/performance-test.sh (installs loadgate on a fresh runner, then "
        "runs the gate), scripts/validate-requirements.sh (the CI's first step: loadgate trace), "
        "scenarios/example.py, thresholds/REQ-PERF-001.yaml, reports/.gitignore and the CI files. Never overwrites a file: exit 2 naming those that exist, unless --force.",
        epilog="exit codes: 0 written, 2 a file exists already (nothing written) or a bad option",
    )
    i.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the repository (default: .)")
    i.add_argument(
        "--ci",
        choices=("github", "gitlab", "jenkins", "all", "none"),
        default="github",
        help="CI files to write: .github/workflows/performance-gate.yml, .gitlab-ci.yml, Jenkinsfile (default: github)",
    )
    i.add_argument("--force", action="store_true", help="overwrite files that exist")
    i.add_argument(
        "--spec",
        metavar="SPEC",
        help="what the script installs loadgate from: loadgate==X, git+https://…, a wheel's path "
        "(default: how this loadgate was installed)",
    )
    i.set_defaults(func=cmd_init)


def _worker_command(sub: Any) -> None:
    w = sub.add_parser(
        "worker",
        help="join a loadgate master from another machine as a load generator",
        description="Run a Locust worker with the loadgate recorder, loading the same scenarios as "
        "the master; its samples travel to the master, which writes the run directory.",
    )
    w.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the master's address (port default 5557)")
    w.add_argument(
        "--scenarios", default="scenarios", metavar="PATH", help="scenario folder or file (default: scenarios/)"
    )
    w.add_argument(
        "--worker-key", metavar="FILE", help="the master's shared worker key (default: $LOADGATE_WORKER_KEY)"
    )
    w.set_defaults(func=cmd_worker)


def _target_command(sub: Any) -> None:
    t = sub.add_parser(
        "target",
        help="serve the embedded demo target until stopped",
        description="A real HTTP server with realistic latency and a small error rate, on loopback.",
    )
    t.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    t.add_argument("--port", type=int, default=8089, help="port; 0 picks a free one (default: 8089)")
    t.add_argument(
        "--latency-scale",
        type=types.positive_float,
        default=1.0,
        metavar="X",
        help="multiply every simulated latency by X (default: 1)",
    )
    t.set_defaults(func=cmd_target)

"""``loadgate import FORMAT FILE`` and ``loadgate gate --from FORMAT:FILE``: another tool's results as a
run directory, gated by the same path as a Locust run's (``loadgate.evaluate.gate_run``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from loadgate.cli.commands import _late_signal, _notifier, _print_changes, _say, cmd_gate
from loadgate.errors import ConfigError

FORMATS = {
    "k6": "k6's JSON output (k6 run --out json=FILE), .gz too",
    "jtl": "JMeter's results (JTL: CSV, or XML), .gz too",
}


def add_import_flags(p: argparse.ArgumentParser, duration: Any) -> None:
    """The flags of an import (``import`` and ``gate --from``): where requirements come from, the window."""
    p.add_argument(
        "--requirement",
        action="append",
        metavar="REQ-…",
        help="requirement to gate (repeatable; default: every requirement the samples name); with one, "
        "requests the tag or map gives no requirement serve it",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--requirement-tag",
        default="requirement",
        metavar="NAME",
        help="k6: the tag that names a request's requirement (default: requirement)",
    )
    how.add_argument(
        "--map",
        metavar="FILE",
        help="YAML map of request name, group or scenario patterns to requirement "
        "IDs (see docs/importing.md); instead of the tag",
    )
    p.add_argument(
        "--warmup",
        type=duration,
        default=0.0,
        metavar="TIME",
        help="time from the first imported sample left out of analysis, e.g. 30s (default: 0)",
    )
    p.add_argument(
        "--duration",
        type=duration,
        metavar="TIME",
        help="analyse only this long after the warmup, e.g. 5m (default: to the last sample)",
    )
    p.add_argument(
        "--tool-version",
        metavar="VERSION",
        help="the version of the tool that wrote FILE, for run.json and the report (neither file records it)",
    )
    p.add_argument(
        "--jtl-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="jtl: a jmeter.save.saveservice.* setting the test ran with (repeatable), e.g. "
        "print_field_names=false, timestamp_format=yyyy/MM/dd HH:mm:ss.SSS, default_delimiter=;",
    )
    p.add_argument(
        "--jtl-properties",
        metavar="FILE",
        help="jtl: a user.properties/jmeter.properties whose jmeter.save.saveservice.* lines apply",
    )
    p.add_argument(
        "--utc-offset",
        default="+00:00",
        metavar="±HH:MM",
        help="jtl: the zone of formatted timestamps written without one (default: +00:00)",
    )


def add_import_parser(sub: Any, duration: Any, notify_flags: Any, epilog: str) -> None:
    i = sub.add_parser(
        "import",
        help="import a k6 or JMeter result file as a run directory, and gate it",
        description="Read another load tool's results (k6 JSON; JMeter JTL, CSV or XML; gzip too) in bounded "
        "memory into a new run directory (samples.parquet, run.json naming the tool, the file and its "
        "SHA-256), then analyse and gate it like a 'loadgate run': summary.json, verdict.json, "
        "junit.xml, summary.md, report.html, history. 'loadgate gate RUN_DIR' re-gates it. A file that "
        "cannot be read leaves no run directory.",
        epilog=epilog,
    )
    i.add_argument("format", choices=sorted(FORMATS), metavar="FORMAT", help="k6 or jtl")
    i.add_argument("file", metavar="FILE", help="the results file")
    i.add_argument("--out", default="reports", metavar="DIR", help="where run directories go (default: reports/)")
    i.add_argument(
        "--thresholds", default="thresholds", metavar="PATH", help="threshold folder or file (default: thresholds/)"
    )
    i.add_argument("--strict", action="store_true", help="a warning (target missed) fails the gate")
    i.add_argument("--baseline", metavar="RUN_DIR|last-pass", help="run to measure regression thresholds against")
    i.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) that signs run.json's manifest (default: $LOADGATE_SIGNING_KEY)",
    )
    add_import_flags(i, duration)
    notify_flags(i)
    i.set_defaults(func=cmd_import, prometheus=None)


def cmd_import(args: argparse.Namespace) -> int:
    return _import_and_gate(args, args.format, args.file)


def cmd_gate_or_import(args: argparse.Namespace) -> int:
    """``loadgate gate``: of a run directory, or (``--from``) of a file imported first."""
    return cmd_gate_from(args) if args.from_file else cmd_gate(args)


def cmd_gate_from(args: argparse.Namespace) -> int:
    fmt, sep, path = str(args.from_file).partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise ConfigError(
            f"--from {args.from_file}: expected FORMAT:FILE with FORMAT one of {', '.join(FORMATS)}, "
            "e.g. --from k6:results.json"
        )
    if args.run_dir:
        raise ConfigError(f"give RUN_DIR or --from, not both (RUN_DIR {args.run_dir})")
    if not args.requirement:
        raise ConfigError("--from needs --requirement REQ-…: the requirement whose thresholds gate the imported run")
    return _import_and_gate(args, fmt, path)


def _import_and_gate(args: argparse.Namespace, fmt: str, path: str) -> int:
    from loadgate.data.signing import load_signing_key
    from loadgate.evaluate import gate_run
    from loadgate.gate.thresholds import load_thresholds
    from loadgate.outputs.writers import format_table
    from loadgate.run.interrupt import Interrupt

    thresholds = args.thresholds or "thresholds"
    files = load_thresholds(thresholds)
    missing = [r for r in args.requirement or () if r not in files]
    if missing:
        raise ConfigError(
            f"--requirement {missing[0]}: no threshold file in {thresholds} says "
            f"'requirement: {missing[0]}'; add {os.path.join(thresholds, missing[0])}.yaml"
        )
    key = load_signing_key(args.signing_key)
    run_dir, run = import_run(args, fmt, path, thresholds)
    reqs = run["requirements"]
    if not reqs:
        raise ConfigError(
            f"{run_dir}: imported {run['samples']} samples, none of which names a requirement "
            f"({run['source']['requirements_from']}); give --requirement REQ-…, --requirement-tag NAME "
            f"or --map FILE, then import again"
        )
    lacking = [r for r in reqs if r not in files]
    if lacking:
        raise ConfigError(
            f"{run_dir}: imported; no threshold file for {', '.join(lacking)} in {thresholds}: add "
            f"{os.path.join(thresholds, lacking[0])}.yaml, then run 'loadgate gate {run_dir}'"
        )
    with Interrupt(raising=True) as guard:
        verdict, _summary, _run = gate_run(
            run_dir,
            files,
            strict=args.strict,
            kind="run",
            baseline=args.baseline,
            say=_say,
            command=args.command_line,
            key=key,
            interrupt=guard,
            before_seal=_notifier(args, files, reqs, "run"),
        )
        print(format_table(verdict, color=sys.stdout.isatty()))
        _print_changes(verdict.changes)
        print(f"run directory: {run_dir}  (report.html, verdict.json, junit.xml, summary.md, samples.parquet)")
        _late_signal(guard)
    return verdict.exit_code


def import_run(args: argparse.Namespace, fmt: str, path: str, thresholds: str) -> tuple[str, dict[str, Any]]:
    """Read ``path`` into a new run directory under ``--out``; return it and its run.json."""
    from loadgate.data import rundir
    from loadgate.data.imports.writer import Window, write_run

    reader = _reader(args, fmt, path)
    source: dict[str, Any] = {
        "tool": reader.tool,
        "version": args.tool_version,
        "format": FORMATS[fmt],
        "file": os.path.abspath(path),
        "sha256": rundir.sha256_file(path),
        "bytes": os.path.getsize(path),
        "requirements_from": reader.requirements.describe(),
    }
    if fmt == "jtl" and reader.settings:
        source["jtl_settings"] = reader.settings
    meta = {"command_line": list(args.command_line), "options": {"thresholds": thresholds, "format": fmt}}
    _say(f"loadgate: importing {path} ({reader.tool})")
    run_dir, tally = write_run(
        reader,
        args.out,
        source,
        Window(args.warmup or 0.0, args.duration),
        requirements=args.requirement or (),
        meta=meta,
    )
    run = rundir.read_json(run_dir, rundir.RUN)
    per = ", ".join(f"{r} {n}" for r, n in sorted(tally.requirements.items())) or "none named"
    _say(f"loadgate: imported {tally.rows} samples ({per}) into {run_dir}; analysing")
    return run_dir, run


def _reader(args: argparse.Namespace, fmt: str, path: str) -> Any:
    from loadgate.data.imports.jtl import jtl_reader
    from loadgate.data.imports.jtl_format import parse_settings
    from loadgate.data.imports.k6_json import K6Reader
    from loadgate.data.imports.requirement_map import by_tag, load_map

    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such file; give the results file ({FORMATS[fmt]})")
    reqs = list(dict.fromkeys(args.requirement or ()))
    fallback = reqs[0] if len(reqs) == 1 else ""
    if args.map:
        requirements = load_map(args.map, fallback)
    else:
        requirements = by_tag(args.requirement_tag if fmt == "k6" else "", fallback)
    if fmt == "k6":
        return K6Reader(path, requirements)
    return jtl_reader(path, requirements, parse_settings(args.jtl_setting, args.jtl_properties), args.utc_offset)

"""SIGTERM or SIGINT (a cancelled CI job, Ctrl-C) once the run is over and `loadgate run` is analysing.

A real `loadgate run` against the embedded demo target; the signal goes to the CLI right after it
prints "recorded N samples; analysing". The analysis of a few seconds' run takes well under a second,
so LOADGATE_TEST_PAUSE (for tests only) holds the phase named: "analysing" (before the samples are
read) or "committing" (summary.md and report.html written, the verdict files not yet). Either way:
exit 3 "interrupted", no file claiming pass, and `loadgate gate` gates the directory afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pyarrow.parquet as pq
import pytest

from conftest import E2E, ROOT, load, run_cli

THR = str(E2E / "thresholds")


def _run_and_signal(out, sig: signal.Signals, phase: str):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOADGATE_TEST_PAUSE=f"{phase}=60")
    env.pop("GITHUB_STEP_SUMMARY", None)
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgate",
            "run",
            "--requirement",
            "REQ-T-PASS",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            THR,
            "--out",
            str(out),
            "--users",
            "4",
            "--duration",
            "3s",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    lines = []
    try:
        for line in cli.stderr:
            lines.append(line)
            if "; analysing" in line:
                if phase == "committing":  # held once report.html is written
                    run_dir = next(p for p in out.iterdir() if p.is_dir())
                    deadline = time.monotonic() + 60
                    while not (run_dir / "report.html").exists() and time.monotonic() < deadline:
                        time.sleep(0.05)
                cli.send_signal(sig)
                break
        err = "".join(lines) + cli.stderr.read()
        cli.wait(60)
        return cli.returncode, cli.stdout.read(), err
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(10)


@pytest.mark.parametrize(
    "sig,phase",
    [(signal.SIGTERM, "analysing"), (signal.SIGINT, "analysing"), (signal.SIGTERM, "committing")],
    ids=["sigterm-analysing", "sigint-analysing", "sigterm-before-the-verdict-files"],
)
def test_a_signal_after_the_run_ends_in_exit_3_interrupted_and_the_directory_gates_later(tmp_path, sig, phase):
    out = tmp_path / "out"
    code, stdout, err = _run_and_signal(out, sig, phase)
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    words = "analysing" if phase == "analysing" else "writing the outputs"
    assert code == 3, err
    assert f"loadgate run: error: interrupted by {sig.name} while {words}" in err, err
    assert f"run 'loadgate gate {run_dir}'" in err
    assert "verdict: PASS" not in stdout
    # no file claims pass: the verdict files say interrupted, the report is gone, nothing is sealed
    verdict = load(run_dir, "verdict.json")
    assert (verdict["verdict"], verdict["exit_code"], verdict["thresholds"]) == ("inconclusive", 3, [])
    assert verdict["reasons"][0].startswith(f"interrupted by {sig.name} while {words}: no verdict was reached")
    junit = ET.parse(run_dir / "junit.xml").getroot()
    assert junit.get("errors") == "1" and junit.get("failures") == "0"
    assert {p.get("value") for p in junit.iter("property") if p.get("name") == "verdict"} <= {"inconclusive"}
    md = (run_dir / "summary.md").read_text()
    assert md.startswith("## loadgate: INCONCLUSIVE") and "Verdict **PASS**" not in md
    assert not (run_dir / "report.html").exists()
    run = load(run_dir, "run.json")
    assert "manifest" not in run
    # every request Locust counted is a sample (the run itself was complete)
    rows = pq.read_metadata(run_dir / "samples.parquet").num_rows
    assert rows == run["samples"] == run["locust_requests"] > 0
    verify = run_cli("verify", str(run_dir))
    assert verify.code == 2 and "did not finish" in verify.stderr and "loadgate gate" in verify.stderr, verify.stderr

    # as the message says: `loadgate gate` analyses, gates and seals it
    gate = run_cli("gate", str(run_dir), "--thresholds", THR)
    assert gate.code == 0, gate.stdout + gate.stderr
    assert load(run_dir, "verdict.json")["verdict"] == "pass"
    assert load(run_dir, "summary.json")["overall"]["requests"] > 0
    assert (run_dir / "report.html").exists()
    assert run_cli("verify", str(run_dir)).code == 0


def _gate_and_signal(run_dir, phase: str):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOADGATE_TEST_PAUSE=f"{phase}=60")
    gate = subprocess.Popen(
        [sys.executable, "-m", "loadgate", "gate", str(run_dir), "--thresholds", THR],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        report = run_dir / "report.html"
        before = report.stat().st_mtime_ns
        deadline = time.monotonic() + 60
        if phase == "analysing":  # held before the samples are read (a signal sooner: the same, nothing rewritten)
            time.sleep(3)
        while phase == "committing" and report.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.05)  # held once the new report is written
        gate.send_signal(signal.SIGTERM)
        out, err = gate.communicate(timeout=60)
        return gate.returncode, out, err
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(10)


def test_a_signal_during_a_regate_leaves_the_sealed_directory_or_says_it_was_interrupted(tmp_path):
    """`loadgate gate` stopped before it rewrote anything leaves the sealed run as it was; stopped after, its
    verdict files say interrupted and the directory is not verified until gated again."""
    out = tmp_path / "out"
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        THR,
        "--out",
        str(out),
        "--users",
        "4",
        "--duration",
        "3s",
    )
    assert res.code == 0, res.stderr
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    sealed = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    code, _out, err = _gate_and_signal(run_dir, "analysing")
    assert code == 3 and "error: interrupted by SIGTERM while analysing: no verdict was reached" in err, err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == sealed
    assert run_cli("verify", str(run_dir)).code == 0

    code, _out, err = _gate_and_signal(run_dir, "committing")
    assert code == 3 and "error: interrupted by SIGTERM while writing the outputs" in err, err
    assert load(run_dir, "verdict.json")["verdict"] == "inconclusive" and not (run_dir / "report.html").exists()
    verify = run_cli("verify", str(run_dir))
    assert verify.code == 2 and "did not finish" in verify.stderr, verify.stderr
    assert run_cli("gate", str(run_dir), "--thresholds", THR).code == 0
    assert run_cli("verify", str(run_dir)).code == 0

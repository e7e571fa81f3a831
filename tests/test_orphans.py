"""A loadgate killed hard (SIGKILL: an OOM kill, a cancelled CI job) leaves no child behind.

Each child runs in a session of its own, so nothing but the child itself can notice that its loadgate
is gone: a Locust worker would knock at its master forever, a demo target would go on listening.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import ROOT, load, run_cli
from loadgate.data.recorder_report import RecorderReport
from loadgate.run.processes import free_port

SCEN = str(ROOT / "tests" / "e2e" / "scenarios")
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _child(parent: psutil.Process, word: str, timeout: float = 60.0) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in parent.children(recursive=True):
            try:
                if word in " ".join(c.cmdline()):
                    return c
            except psutil.Error:
                pass
        time.sleep(0.1)
    raise AssertionError(f"no {word} child of {parent.pid} within {timeout:.0f} s")


def _gone(proc: psutil.Process, timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except psutil.TimeoutExpired:
        return False


@pytest.mark.parametrize("settle", [0.0, 3.0], ids=["killed-while-it-starts", "killed-later"])
def test_a_worker_whose_loadgate_is_killed_stops_too(settle):
    """No master listens: the worker would wait for one forever. Killed while its Locust child is still
    importing, or after it is up: either way the child stops by itself within a few seconds."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "loadgate", "worker", "--master", f"127.0.0.1:{free_port()}", "--scenarios", SCEN],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    locust = None
    try:
        locust = _child(psutil.Process(cli.pid), "locust")
        time.sleep(settle)
        assert locust.is_running()
        cli.kill()
        cli.wait(10)
        assert _gone(locust, 30), "the Locust worker outlived its loadgate by 30 s"
    finally:
        if cli.poll() is None:
            cli.kill()
        if locust is not None and locust.is_running():
            locust.kill()


def test_a_demo_target_whose_loadgate_is_killed_stops_too(tmp_path):
    """The embedded target of a run, its parent killed while the target serves."""
    script = (
        "import sys, time\n"
        "from loadgate.run.processes import DemoTarget\n"
        "with DemoTarget() as t:\n"
        "    print(t.proc.pid, t.url, flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    target = None
    try:
        pid, url = parent.stdout.readline().split()
        target = psutil.Process(int(pid))
        assert url.startswith("http://127.0.0.1:")
        time.sleep(1.5)  # it serves, and its watch has looked at least once
        assert target.is_running()
        parent.kill()
        parent.wait(10)
        assert _gone(target, 30), "the demo target outlived its loadgate by 30 s"
    finally:
        if parent.poll() is None:
            parent.kill()
        if target is not None and target.is_running():
            os.kill(target.pid, signal.SIGKILL)
        parent.stdout.close()


def test_a_child_started_some_other_way_is_not_watched():
    """Started by hand or by a container, a process has no loadgate parent: nothing stops it."""
    code = (
        "import os\nfrom loadgate.shared.child import stop_with_parent\n"
        "print(stop_with_parent(), os.environ.get('LOADGATE_PARENT_PID'))\n"
    )
    env = {k: v for k, v in ENV.items() if k != "LOADGATE_PARENT_PID"}
    alone = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert alone.stdout.split() == ["False", "None"], alone.stderr
    # Started through child_env: watched, and the variable is not passed on to what it starts.
    from loadgate.shared.child import child_env

    watched = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert watched.stdout.split() == ["True", "None"], watched.stderr


def test_a_run_whose_loadgate_is_killed_stops_its_load_and_keeps_what_it_recorded(tmp_path):
    """Mid-run: Locust stops its users and closes the samples stream, the demo target stops, every batch
    written so far reads back, and `loadgate gate` gates them (inconclusive: the run did not finish)."""
    import pyarrow as pa

    out = tmp_path / "out"
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadgate",
            "run",
            "--requirement",
            "REQ-T-PASS",
            "--scenarios",
            SCEN,
            "--thresholds",
            str(ROOT / "tests" / "e2e" / "thresholds"),
            "--users",
            "4",
            "--duration",
            "60s",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = []
    try:
        parent = psutil.Process(cli.pid)
        children = [_child(parent, "locust_plugin.py"), _child(parent, "loadgate target")]
        deadline = time.monotonic() + 60
        stream = None
        while time.monotonic() < deadline and (stream is None or stream.stat().st_size < 20_000):
            stream = next(out.glob("*/samples.arrows"), None)
            time.sleep(0.2)
        assert stream is not None and stream.stat().st_size >= 20_000, "no samples streamed within 60 s"
        cli.kill()
        cli.wait(10)
        for child in children:
            assert _gone(child, 30), f"{' '.join(child.cmdline())[:80]} outlived its loadgate by 30 s"
        with pa.ipc.open_stream(stream.read_bytes()) as reader:
            rows = sum(batch.num_rows for batch in reader)  # the stream ends cleanly: every batch reads
        report = load(stream.parent, "recorder.json")
        assert rows == report["locust_requests"] > 0  # every request Locust counted
        declared = RecorderReport.__required_keys__ | RecorderReport.__optional_keys__  # its keys are its shape's
        assert RecorderReport.__required_keys__ <= set(report) and set(report) <= declared, sorted(
            set(report) - declared
        )
        # not verifiable yet, and `verify` says what to do (exit 2), not "written by an older loadgate" (exit 1)
        verify = run_cli("verify", str(stream.parent))
        assert verify.code == 2, verify.stdout + verify.stderr
        assert "the run did not finish" in verify.stderr and f"loadgate gate {stream.parent}" in verify.stderr
        # ... and `loadgate gate` makes a run of it: every sample, inconclusive, saying why
        gate = run_cli("gate", str(stream.parent), "--thresholds", str(ROOT / "tests" / "e2e" / "thresholds"))
        assert gate.code == 3, gate.stdout + gate.stderr
        verdict, summary = load(stream.parent, "verdict.json"), load(stream.parent, "summary.json")
        assert verdict["reasons"][0].startswith(
            "the run did not finish: the loadgate process running it ended without writing the run's end (killed?)"
        ), verdict["reasons"]
        assert f"gated on the {rows} samples it recorded" in verdict["reasons"][0]
        assert summary["overall"]["requests"] > 0.8 * rows  # the window: ramp-up done to Locust's stop
        # every threshold evaluated on those samples (the demo target's latency may warn on a short run)
        assert all(t["value"] is not None and t["status"] in ("pass", "warn") for t in verdict["thresholds"])
        assert run_cli("verify", str(stream.parent)).code == 0  # sealed now, its verdict saying why inconclusive
    finally:
        if cli.poll() is None:
            cli.kill()
        for child in children:
            if child.is_running():
                child.kill()

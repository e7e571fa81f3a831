"""SIGKILL of a whole `loadgate run` process tree (an OOM kill of the job's cgroup, a runner torn down).

Nobody is left to finish anything: run.json has no end, Locust never wrote recorder.json, the samples
stream may end mid-batch. `verify` says the run did not finish; `loadgate gate` gates the samples kept
over a window from run.json's start (+ warmup) to the last sample, never an impossible one, and says
that how many requests went unrecorded is unknown. (SIGKILL of the CLI alone: tests/test_orphans.py;
of a worker: tests/test_distributed.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pyarrow.parquet as pq

from conftest import E2E, ROOT, load, run_cli
from loadgate.data.samples import stream_rows

THR = str(E2E / "thresholds")


def test_a_run_killed_with_all_its_processes_gates_over_the_samples_it_kept(tmp_path):
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
            str(E2E / "scenarios"),
            "--thresholds",
            THR,
            "--out",
            str(out),
            "--users",
            "4",
            "--warmup",
            "2s",
            "--duration",
            "60s",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        stream = None
        while time.monotonic() < deadline and (stream is None or stream.stat().st_size < 20_000):
            stream = next(out.glob("*/samples.arrows"), None) if out.exists() else None
            time.sleep(0.2)
        assert stream is not None and stream.stat().st_size >= 20_000, "no samples streamed within 90 s"
        parent = psutil.Process(cli.pid)
        tree = [parent, *parent.children(recursive=True)]
        for p in tree:  # all at once, as the kernel's OOM killer of a cgroup would
            p.send_signal(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=30)
    finally:
        for p in tree:
            if p.is_running():
                p.kill()
        cli.wait(10)
    run_dir = stream.parent
    assert load(run_dir, "run.json")["end"] is None and not (run_dir / "recorder.json").exists()
    kept = stream_rows(stream)  # its complete batches
    assert kept > 0

    verify = run_cli("verify", str(run_dir))
    assert verify.code == 2 and "the run did not finish" in verify.stderr, verify.stdout + verify.stderr
    assert f"loadgate gate {run_dir}" in verify.stderr

    gate = run_cli("gate", str(run_dir), "--thresholds", THR)
    assert gate.code == 3, gate.stdout + gate.stderr
    verdict, summary, run = (load(run_dir, n) for n in ("verdict.json", "summary.json", "run.json"))
    assert verdict["reasons"][0].startswith("the run did not finish"), verdict["reasons"]
    assert "how many requests were not recorded is unknown" in verdict["reasons"][0]
    assert f"gated on the {kept} samples kept, from run.json's start to the last sample" in verdict["reasons"][0]
    df = pq.read_table(run_dir / "samples.parquet", columns=["timestamp"]).to_pandas()
    assert len(df) == kept
    window = summary["window"]
    assert window["start"] == run["start"] + 2.0 and window["end"] == df.timestamp.max()
    in_window = ((df.timestamp >= window["start"]) & (df.timestamp <= window["end"])).sum()
    assert summary["overall"]["requests"] == in_window > 0
    assert not any("requests in the window" in r for r in verdict["reasons"]), verdict["reasons"]
    assert run_cli("verify", str(run_dir)).code == 0
    assert not (run_dir / ".reserve").exists()  # the recorder's room for a full disk is not sealed as evidence

"""A disk that fills up: a real `loadgate run` into a small tmpfs mounted by the test (as root).

The recorder's stream runs out mid-run. The run must stop, say exactly how many of the requests Locust
counted were lost, write that into run.json, and end inconclusive ("disk full"); once there is room
again, `loadgate gate` gates what was kept over a sane window and says in the verdict that samples are
missing. The history's SQLite database on a full disk shows SQLite's own error.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import E2E, load, run_cli

THR = str(E2E / "thresholds")
LOST = re.compile(
    r"disk full: cannot write samples\.arrows: No space left on device; (\d+) of the (\d+) requests "
    r"Locust counted were lost \((\d+) samples kept\)"
)


def _mount(path: Path, size: str) -> Path:
    path.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as e:
        pytest.skip(f"cannot mount a tmpfs to fill up: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    return path


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of the size asked, unmounted at the end whatever happened."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        mounted.append(_mount(tmp_path / f"fs{len(mounted)}", size))
        return mounted[-1]

    yield make
    for path in mounted:
        if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _stream_rows(path: Path) -> int:
    rows = 0
    with pa.OSFile(str(path), "rb") as f:
        reader = pa.ipc.open_stream(f)
        while True:
            try:
                rows += reader.read_next_batch().num_rows
            except StopIteration:
                break
            except (pa.ArrowException, OSError):  # the batch the disk had no room for
                break
    return rows


def _locust_count(log: Path) -> int:
    """Locust's own count of requests, from the summary table it prints as it quits."""
    line = [l for l in log.read_text().splitlines() if l.strip().startswith("Aggregated")][-1]
    return int(line.split()[-1])


def test_a_disk_filling_up_mid_run_states_the_exact_loss_and_regates_over_a_sane_window(small_fs, tmp_path):
    fs = small_fs("64k")  # run.json, rules.json, locust.log, the recorder's reserve: the stream gets ~30 KB
    out = fs / "out"
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
        "10",
        "--duration",
        "40s",
        "--target-latency-scale",
        "0.01",
        timeout=240,
    )
    assert res.code == 3, res.stdout + res.stderr
    m = LOST.search(res.stderr)
    assert m, res.stderr
    lost, counted, kept = map(int, m.groups())
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    assert "every recorded sample is kept" not in res.stderr
    assert f"loadgate gate {run_dir}" in res.stderr
    # Locust's count is Locust's: the summary it printed as it quit
    assert counted == _locust_count(run_dir / "locust.log")
    # what was kept: the stream's complete batches (no room was left for samples.parquet)
    stream = run_dir / "samples.arrows"
    assert stream.exists() and not (run_dir / "samples.parquet").exists()
    assert kept == _stream_rows(stream) > 0
    assert lost == counted - kept > 0
    run = load(run_dir, "run.json")
    assert (run["samples"], run["locust_requests"], run["samples_lost"]) == (kept, counted, lost)
    assert run["end"] is not None and "No space left on device" in run["write_error"]
    assert any(
        p.startswith("disk full: cannot write samples.arrows") and f"{lost} of the {counted}" in p
        for p in run["problems"]
    )
    # nothing sealed as intact, and no file claims a verdict
    assert "manifest" not in run and not (run_dir / "verdict.json").exists()
    verify = run_cli("verify", str(run_dir))
    assert verify.code == 2 and "did not finish" in verify.stderr and "loadgate gate" in verify.stderr, verify.stderr

    # room again (a copy elsewhere): the gate converts the stream and gates every kept sample
    roomy = tmp_path / "roomy" / run_dir.name
    shutil.copytree(run_dir, roomy)
    gate = run_cli("gate", str(roomy), "--thresholds", THR)
    assert gate.code == 3, gate.stdout + gate.stderr
    verdict, summary = load(roomy, "verdict.json"), load(roomy, "summary.json")
    assert verdict["verdict"] == "inconclusive"
    assert any(r.startswith("disk full") and f"{lost} of the {counted} requests" in r for r in verdict["reasons"])
    df = pq.read_table(roomy / "samples.parquet", columns=["timestamp"]).to_pandas()
    assert len(df) == kept
    window = summary["window"]
    assert window["end"] > window["start"] >= run["start"]
    assert (
        summary["overall"]["requests"]
        == ((df.timestamp >= window["start"]) & (df.timestamp <= window["end"])).sum()
        > 0
    )
    assert run_cli("verify", str(roomy)).code == 0  # sealed, with the loss in its verdict


def test_the_history_on_a_full_disk_shows_sqlites_own_error(small_fs):
    """The disk fills while another process has the history open (its WAL stays): the record's COMMIT fails,
    SQLite rolls back by itself, and the warning names the full disk, not a failed ROLLBACK of ours."""
    from loadgate.history import store

    fs = small_fs("1m")
    run_dir = fs / "20260101T000000Z-REQ-X"
    run_dir.mkdir()
    run = {"requirements": ["REQ-X"], "start": 1.0, "end": 2.0, "users": 1}
    summary = {
        "requirements": {
            "REQ-X": {
                "requests": 1,
                "failures": 0,
                "error_rate": 0.0,
                "throughput": 1.0,
                "response_time_ms": {"p50": 1.0},
            }
        }
    }
    verdict = {"verdict": "pass", "exit_code": 0, "thresholds": []}
    assert store.record_safely(str(run_dir), run, summary, verdict, kind="run", say=print) == 1
    reader = sqlite3.connect(store.db_of_run(str(run_dir)))
    try:
        assert reader.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
        with open(fs / "filler", "wb", buffering=0) as f:  # every byte left
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        said: list[str] = []
        assert store.record_safely(str(run_dir), run, summary, verdict, kind="gate", say=said.append) is None
        assert len(said) == 1 and "(database or disk is full)" in said[0], said
        assert reader.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)  # nothing half-written
    finally:
        reader.close()

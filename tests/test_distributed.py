"""Distributed runs on Locust's own master/worker engine, on 127.0.0.1: every sample from every worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from conftest import E2E, ROOT, load, run_cli

SCEN = str(E2E / "scenarios")
THR = str(E2E / "thresholds")
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _free_port() -> int:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_dir(out):
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 1
    return dirs[0]


def _check_complete(run_dir, n_workers):
    run = load(run_dir, "run.json")
    df = pq.read_table(run_dir / "samples.parquet").to_pandas()
    assert len(df) == run["samples"] == run["locust_requests"] > 0
    workers = run["worker_counts"]
    assert len(workers) == n_workers
    assert set(df["worker"]) == set(workers)
    for wid, w in workers.items():
        assert w["sent"] == w["received"] == (df["worker"] == wid).sum() > 0
    summary = load(run_dir, "summary.json")
    start = run["ramp_up_done"] + run["warmup"]
    rt = df[(df.timestamp >= start) & (df.timestamp <= run["end"])]["response_time_ms"].to_numpy()
    for key, q in [("p50", 50), ("p95", 95), ("p99", 99), ("p99.9", 99.9)]:
        assert summary["overall"]["response_time_ms"][key] == np.percentile(rt, q)
    return run


@pytest.mark.parametrize("offload_rows", [None, "1"])
def test_two_local_workers_deliver_every_sample(tmp_path, offload_rows):
    """``offload_rows`` 1: every batch, the workers' and the master's, goes through the native thread
    (by default batches of this size are handled on the event loop)."""
    out = tmp_path / "out"
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        SCEN,
        "--thresholds",
        THR,
        "--out",
        str(out),
        "--workers",
        "2",
        "--users",
        "6",
        "--duration",
        "4s",
        env={"LOADGATE_OFFLOAD_ROWS": offload_rows} if offload_rows else None,
    )
    assert res.code == 0, res.stderr
    run = _check_complete(_run_dir(out), 2)
    assert run["workers"] == 2 and run["problems"] == []


def test_remote_workers_join_over_tcp(tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    master = subprocess.Popen(
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
            THR,
            "--out",
            str(out),
            "--users",
            "4",
            "--duration",
            "4s",
            "--expect-workers",
            "2",
            "--master-bind",
            f"127.0.0.1:{port}",
            "--worker-wait",
            "60s",
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "loadgate", "worker", "--master", f"127.0.0.1:{port}", "--scenarios", SCEN],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        _, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
        for w in workers:
            assert w.wait(30) == 0
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    _check_complete(_run_dir(out), 2)


def test_no_workers_coming_is_a_clear_inconclusive(tmp_path):
    out = tmp_path / "out"
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        SCEN,
        "--thresholds",
        THR,
        "--out",
        str(out),
        "--expect-workers",
        "1",
        "--master-bind",
        f"127.0.0.1:{_free_port()}",
        "--worker-wait",
        "2s",
    )
    assert res.code == 3, res.stderr
    reasons = load(_run_dir(out), "verdict.json")["reasons"]
    assert reasons[0].startswith("only some of the 1 workers connected within 2s; start 'loadgate worker")


def _workers_delivered(stream) -> int:
    """How many workers' samples the master's stream holds so far (its complete batches)."""
    from loadgate.data.samples import read_stream

    return len(set(read_stream(stream, ["worker"]).column("worker").to_pylist()))


def _kill_a_worker_mid_run(tmp_path, *extra):
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
            THR,
            "--out",
            str(out),
            "--workers",
            "2",
            "--users",
            "6",
            "--duration",
            "14s",
            *extra,
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    victim = None
    while time.monotonic() < deadline and victim is None:
        streams = list(out.glob("*/samples.arrows")) if out.exists() else []
        if streams and _workers_delivered(streams[0]) == 2:  # whichever is killed has delivered samples
            victim = next(c for c in psutil.Process(cli.pid).children(recursive=True) if "--worker" in c.cmdline())
        time.sleep(0.2)
    assert victim is not None, "the run never started recording"
    victim.send_signal(signal.SIGKILL)
    killed = time.time()
    _, err = cli.communicate(timeout=120)
    return cli.returncode, err, _run_dir(out), killed


def test_a_worker_killed_mid_run_is_reported_and_inconclusive(tmp_path):
    code, err, run_dir, killed = _kill_a_worker_mid_run(tmp_path)
    assert code == 3, err
    run = load(run_dir, "run.json")
    lost = {wid: w["lost"] for wid, w in run["worker_counts"].items() if w["lost"]}
    assert len(lost) == 1
    ((wid, info),) = lost.items()
    assert info["delivered"] > 0
    df = pq.read_table(run_dir / "samples.parquet").to_pandas()
    assert (df["worker"] == wid).sum() == info["delivered"]  # what it delivered is kept
    assert run["end"] - run["ramp_up_done"] >= 13  # the run went on with the rest
    reasons = load(run_dir, "verdict.json")["reasons"]
    assert any(
        r.startswith(
            f"worker {wid} was lost: last heard from {info['after_s']:.0f}s into the run (its loss "
            f"noticed at {info['noticed_after_s']:.0f}s), after delivering {info['delivered']} samples"
        )
        for r in reasons
    ), reasons
    # the loss is dated when the master last heard from the worker (its last batch or heartbeat, looked at once a
    # second), not when Locust's heartbeat countdown ran out and noticed it, seconds later
    assert info["at"] <= killed + 1.5 < run["start"] + info["noticed_after_s"], (info, killed)


def test_allow_worker_loss_gates_on_the_rest(tmp_path):
    code, err, run_dir, _killed = _kill_a_worker_mid_run(tmp_path, "--allow-worker-loss")
    assert code == 0, err
    run = load(run_dir, "run.json")
    assert sum(1 for w in run["worker_counts"].values() if w["lost"]) == 1


# --- authenticated workers: CURVE with a shared key, every socket on 127.0.0.1 -----------

KEY = "0123456789abcdef" * 4


def test_keyed_workers_join_and_a_wrong_key_is_refused(tmp_path):
    """Two workers with the key deliver every sample; a third with a wrong key and a fourth with none are refused,
    named in run.json, and not one of their samples reaches the run."""
    port = _free_port()
    out = tmp_path / "out"
    (tmp_path / "worker.key").write_text(KEY + "\n")
    (tmp_path / "wrong.key").write_text("f" * 64)
    env_no_key = {k: v for k, v in ENV.items() if k != "LOADGATE_WORKER_KEY"}
    master = subprocess.Popen(
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
            THR,
            "--out",
            str(out),
            "--users",
            "4",
            "--duration",
            "4s",
            "--expect-workers",
            "2",
            "--master-bind",
            f"127.0.0.1:{port}",
            "--worker-wait",
            "60s",
        ],
        cwd=ROOT,
        env=dict(ENV, LOADGATE_WORKER_KEY=KEY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def worker(*key_args, env=env_no_key):
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loadgate",
                "worker",
                "--master",
                f"127.0.0.1:{port}",
                "--scenarios",
                SCEN,
                *key_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    rogues = [worker("--worker-key", str(tmp_path / "wrong.key")), worker()]
    try:
        _wait_for_refusals(out)  # the rogues knock first; the good workers only then complete the master's quota
        good = [
            worker("--worker-key", str(tmp_path / "worker.key")),
            worker(env=dict(env_no_key, LOADGATE_WORKER_KEY=KEY)),
        ]
        _, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
        for w in good:
            assert w.wait(30) == 0
    finally:
        for p in (master, *rogues, *locals().get("good", [])):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert "loadgate: refused a worker at 127.0.0.1 (wrong worker key, " in err
    run = _check_complete(_run_dir(out), 2)  # exactly two workers, each sent == received == its rows
    assert run["worker_auth"] == "curve"
    reasons = {r["reason"] for r in run["refused_workers"]}
    assert "wrong worker key" in reasons, run["refused_workers"]
    assert len(reasons) >= 2, run["refused_workers"]  # the plain worker is refused too, for its own reason
    assert all(r["address"] in ("127.0.0.1", "unknown address") and r["attempts"] >= 1 for r in run["refused_workers"])
    assert run["samples"] == sum(w["received"] for w in run["worker_counts"].values())


def _wait_for_refusals(out, timeout=60.0):
    """Until the master's Locust log shows it refused both rogues (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = list(out.glob("*/locust.log")) if out.exists() else []
        text = logs[0].read_text(errors="replace") if logs else ""
        if "refused a worker at" in text and text.count("refused a worker at") >= 2:
            return
        time.sleep(0.2)
    raise AssertionError("the master never refused the rogue workers")


def test_a_bind_beyond_loopback_needs_a_key_or_insecure_workers(tmp_path):
    """Checked before anything listens: no socket is opened beyond loopback."""
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        SCEN,
        "--thresholds",
        THR,
        "--out",
        str(tmp_path / "out"),
        "--expect-workers",
        "1",
        "--master-bind",
        "0.0.0.0:5557",
        env={"LOADGATE_WORKER_KEY": ""},
    )
    assert res.code == 2
    assert res.error_lines == [
        "loadgate run: error: --master-bind 0.0.0.0: listening beyond loopback lets any process "
        "that reaches the port feed samples into the run; give master and workers a shared key "
        "with --worker-key FILE or $LOADGATE_WORKER_KEY (make one with 'openssl rand -hex 32' "
        "and give master and workers the same), or accept the risk with --insecure-workers"
    ]
    assert not (tmp_path / "out").exists()


def test_a_short_worker_key_is_refused(tmp_path):
    res = run_cli("worker", "--master", "127.0.0.1:5557", "--scenarios", SCEN, env={"LOADGATE_WORKER_KEY": "secret"})
    assert res.code == 2
    assert res.error_lines == [
        "loadgate worker: error: $LOADGATE_WORKER_KEY: the worker key has 6 characters, expected "
        "at least 32; make one with 'openssl rand -hex 32' and give master and workers the same"
    ]


def test_worker_auth_of_each_bind():
    from loadgate.errors import ConfigError
    from loadgate.shared.keys import worker_auth

    assert worker_auth("0.0.0.0", KEY, False) == "curve"
    assert worker_auth("127.0.0.1", None, False) == worker_auth("::1", None, False) == "loopback"
    assert worker_auth("localhost", None, False) == worker_auth("127.0.0.2", None, False) == "loopback"
    assert worker_auth("0.0.0.0", None, True) == worker_auth("workers.example", None, True) == "insecure"
    for host in ("0.0.0.0", "::", "10.0.0.5", "master.svc"):
        with __import__("pytest").raises(ConfigError, match="--insecure-workers"):
            worker_auth(host, None, False)

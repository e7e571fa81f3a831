"""``loadgate worker``: a Locust worker with the recorder, joined to a master on another machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Callable

from loadgate.errors import ConfigError
from loadgate.run.interrupt import Interrupt
from loadgate.run.processes import PLUGIN, STOP_GRACE_S, split_host_port
from loadgate.shared.child import child_env


def run_worker(master: str, files: list[str], say: Callable[[str], None], worker_key: str | None = None) -> int:
    """``loadgate worker``: a Locust worker with the recorder, joined to ``master``; its exit code."""
    try:
        host, port = split_host_port(master, 5557)
    except ValueError:
        raise ConfigError(f"--master {master}: expected HOST or HOST:PORT, like 10.0.0.5:5557") from None
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join([*files, PLUGIN]),
        "--worker",
        "--master-host",
        host,
        "--master-port",
        str(port),
        "--loglevel",
        "INFO",
    ]
    say(
        f"loadgate worker: joining the master at {host}:{port} with {', '.join(files)}"
        + (" over CURVE (worker key)" if worker_key else "")
    )
    proc = subprocess.Popen(cmd, env=child_env(worker_key), stdin=subprocess.DEVNULL)
    with Interrupt() as intr:
        while proc.poll() is None:
            if intr.reason:
                say(f"loadgate worker: {intr.reason}; stopping")
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                break
            time.sleep(0.2)
    return 0 if proc.wait() in (0, 1) else proc.returncode

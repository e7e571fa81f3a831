"""Child processes of a run: the embedded demo target and the Locust master/workers.

Each child runs in its own session (process group) so that stopping it also stops anything it
started, and nothing is left behind when loadgate exits.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO

from loadgate.errors import RunError

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locust_plugin.py")
CAPACITY_SHAPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capacity_shape.py")
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds loadgate/


def child_env(worker_key: str | None = None) -> dict:
    """Environment for children: loadgate importable even when run from a source checkout; the worker key, if
    any, for the Locust master/workers (an environment variable: never on a command line others can read)."""
    env = dict(os.environ)
    env.pop("LOADGATE_WORKER_KEY", None)
    if worker_key:
        env["LOADGATE_WORKER_KEY"] = worker_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_ENV] = str(os.getpid())
    return env


PARENT_ENV = "LOADGATE_PARENT_PID"  # set by child_env: the loadgate process a child must not outlive


def stop_with_parent(poll_s: float = 1.0) -> bool:
    """In a child of loadgate (:func:`child_env`): SIGTERM itself once that process is gone.

    Each child runs in a session of its own, so a loadgate killed hard (SIGKILL, an OOM kill, a CI job
    cancelled) would leave it behind: a Locust worker knocking at a master forever, a demo target
    listening, a run's load going on with nobody to finalise it. The child's own SIGTERM handling then
    stops it as ``loadgate`` would (Locust: stop the users, flush and close the samples stream).
    A process started any other way (by hand, by a container) has no such parent: no watch. The
    variable is taken out of the environment, so what this process starts does not inherit it; a
    parent already gone before the watch began (killed while this one started up) stops it at once.
    Returns whether it watches.
    """
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent.isdigit():
        return False

    def watch() -> None:  # a greenlet under Locust's monkey-patching, a daemon thread elsewhere
        while os.getppid() == int(parent):
            time.sleep(poll_s)
        try:  # (its output went to that process: most likely a broken pipe now)
            print(f"loadgate: the loadgate process {parent} that started this one is gone; stopping",
                  file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="loadgate-parent-watch", daemon=True).start()
    return True


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` or a bare IPv6 address -> (host, port); ValueError if malformed."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not port and default_port is not None:
        port = str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Signal the child's process group, wait up to ``timeout``, then kill it. Returns its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    return proc.returncode


class DemoTarget:
    """The embedded demo target in a child process on a free loopback port."""

    def __init__(self, latency_scale: float = 1.0, log: IO | None = None) -> None:
        self.latency_scale = latency_scale
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None

    def __enter__(self) -> "DemoTarget":
        cmd = [sys.executable, "-m", "loadgate", "target", "--host", "127.0.0.1", "--port", "0",
               "--latency-scale", str(self.latency_scale)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log or subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True)
        deadline = time.monotonic() + 30
        line = b""
        assert self.proc.stdout is not None
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
        text = line.decode(errors="replace").strip()
        if " on http" not in text:
            stop_process(self.proc)
            raise RunError(f"the embedded demo target did not start ({text or 'no output'}); "
                           "try 'loadgate target' by hand to see why")
        self.url = text.split(" on ", 1)[1]
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
            if self.proc.stdout:
                self.proc.stdout.close()

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
import time
from typing import IO

from loadgate.errors import RunError
from loadgate.shared.child import child_env

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # loadgate/
# The files Locust loads with ``-f``: paths, not imports (this process never imports the plugin).
PLUGIN = os.path.join(_PACKAGE, "plugin", "locust_plugin.py")
CAPACITY_SHAPE = os.path.join(_PACKAGE, "plugin", "capacity_shape.py")
STOP_GRACE_S = 8.0  # SIGTERM -> Locust stopped; a stop may take 10 s in all


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
        cmd = [
            sys.executable,
            "-m",
            "loadgate",
            "target",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--latency-scale",
            str(self.latency_scale),
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self.log or subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )
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
            raise RunError(
                f"the embedded demo target did not start ({text or 'no output'}); "
                "try 'loadgate target' by hand to see why"
            )
        self.url = text.split(" on ", 1)[1]
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
            if self.proc.stdout:
                self.proc.stdout.close()

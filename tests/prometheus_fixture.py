"""A real Prometheus and node_exporter (Debian's packages) as child processes on loopback ports.

Scrape interval 1 s, a temporary TSDB, stopped after use. Tests that need them skip when the binaries
are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
needs_prometheus = pytest.mark.skipif(
    not (PROMETHEUS and NODE_EXPORTER), reason="Debian's prometheus and prometheus-node-exporter are not installed"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    url: str
    node: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        doc = requests.get(self.url + "/api/v1/query", params=params, timeout=10).json()
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def start(tmp: Path, *, scrapes: int = 3) -> Stack:
    """Start node_exporter and Prometheus scraping it every second; return once ``scrapes`` scrapes are stored."""
    node_port, prom_port = free_port(), free_port()
    node = f"127.0.0.1:{node_port}"
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: node\n    static_configs:\n      - targets: ['{node}']\n"
    )
    log = open(tmp / "prometheus-stack.log", "ab")
    stack = Stack(f"http://127.0.0.1:{prom_port}", node)
    try:
        stack.procs.append(
            subprocess.Popen(
                [NODE_EXPORTER, f"--web.listen-address={node}"], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        )
        stack.procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                got = stack.query(f"count_over_time(up{{instance='{node}'}}[1m])")
                if got and float(got[0]["value"][1]) >= scrapes:
                    return stack
            except (requests.RequestException, ValueError):
                pass
            if any(p.poll() is not None for p in stack.procs):
                raise RuntimeError(f"prometheus or node_exporter exited; see {tmp / 'prometheus-stack.log'}")
            time.sleep(0.5)
        raise RuntimeError("Prometheus did not scrape node_exporter within 60 s")
    except BaseException:
        stack.stop()
        raise

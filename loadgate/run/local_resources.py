"""``source: local``: this machine's CPU, memory and disks, sampled once a second while load runs.

A thread in the ``loadgate run`` process (psutil, no Locust), so the samples cover the whole run and the
gate cuts the analysis window from them, as Prometheus' range query does. The rows go to
``resources.parquet`` every few seconds, so a crash keeps what was sampled.
"""

from __future__ import annotations

import threading
import time

import psutil

from loadgate.data import resources as store

PERIOD_S = 1.0
FLUSH_EVERY_S = 10.0
# psutil's "physical" partitions still include pseudo and memory-backed ones in containers
_NOT_DISKS = {"tmpfs", "ramfs", "devtmpfs", "overlay", "squashfs", "nsfs", "fuse.lxcfs", "autofs"}


def disk_mountpoints() -> list[str]:
    """Mount points of this machine's disks, as node_exporter's disk query would pick them."""
    out = []
    for p in psutil.disk_partitions(all=False):
        if p.fstype in _NOT_DISKS:
            continue
        try:
            psutil.disk_usage(p.mountpoint)
        except OSError:
            continue
        out.append(p.mountpoint)
    return sorted(set(out))


def sample(mountpoints: list[str]) -> list[store.Row]:
    """One sample: cpu (% of all cores busy since the previous call), memory (1 - available/total) and
    each disk (used / (used + available), as df)."""
    now = time.time()
    vm = psutil.virtual_memory()
    rows: list[store.Row] = [
        (now, "local", "cpu", "psutil.cpu_percent", "{}", float(psutil.cpu_percent(None))),
        (now, "local", "memory", "psutil.virtual_memory", "{}", 100.0 * (1.0 - vm.available / vm.total)),
    ]
    for mount in mountpoints:
        try:
            rows.append(
                (
                    now,
                    "local",
                    "disk",
                    "psutil.disk_usage",
                    f'{{mountpoint="{mount}"}}',
                    float(psutil.disk_usage(mount).percent),
                )
            )
        except OSError:
            continue  # unmounted during the run: that point is missing, the gate counts the gaps
    return rows


class LocalSampler:
    """Context manager: samples every PERIOD_S in a daemon thread; rows land in the run's resources.parquet."""

    def __init__(self, run_dir: str, period: float = PERIOD_S) -> None:
        self.run_dir = run_dir
        self.period = period
        self.rows: list[store.Row] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="loadgate-local-resources", daemon=True)

    def __enter__(self) -> "LocalSampler":
        self._mounts = disk_mountpoints()
        self._thread.start()
        return self

    def _loop(self) -> None:
        psutil.cpu_percent(None)  # the first call (per thread, in newer psutil) has nothing to measure from
        next_at = time.monotonic() + self.period
        last_flush = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.period  # a fixed grid: a slow sample does not shift the ones after it
            got = sample(self._mounts)
            with self._lock:
                self.rows.extend(got)
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                self._flush()
                last_flush = time.monotonic()

    def _flush(self) -> None:
        with self._lock:
            rows = list(self.rows)
        store.write_rows(self.run_dir, rows, replace_source="local")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._flush()

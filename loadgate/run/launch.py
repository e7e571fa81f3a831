"""Starting the Locust process(es) of a session: their child.json, their command lines, and the threads that
copy their output to locust.log. What differs between the ways a run is driven comes from the driver."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from typing import IO

from loadgate.data import rundir
from loadgate.run.drivers.base import Driver
from loadgate.run.options import RunOptions
from loadgate.run.processes import PLUGIN, free_port, split_host_port
from loadgate.shared.child import ChildConfig, child_env
from loadgate.shared.redact import redact


def child_config(opts: RunOptions, driver: Driver, run_dir: str, rules: list[dict]) -> ChildConfig:
    """The settings of the Locust child(ren) of a session (``run_dir``: its folder)."""
    common = ChildConfig(
        list(opts.requirements), opts.select, float(opts.flush_interval), float(f"{opts.warmup:g}"), rules
    )
    return driver.child_config(common, opts, run_dir)


def locust_cmd(
    opts: RunOptions, driver: Driver, files: list[str], user_classes: list[str], host: str, role: str, port: int | None
) -> list[str]:
    """Locust's own command line for one child (``role``: local, master or worker); loadgate's settings go in
    its child.json (:func:`child_config`)."""
    shape = driver.locust_files() if role != "worker" else []
    cmd = [sys.executable, "-m", "locust", "-f", ",".join([*files, PLUGIN, *shape]), "--loglevel", "INFO"]
    if opts.select == "tasks":  # journeys: the chosen User classes run whole, untagged tasks included
        cmd += ["--tags", *opts.requirements]
    if role == "worker":
        return cmd + ["--headless", "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), *user_classes]
    cmd += driver.locust_args(opts, host)
    if role == "master":
        bind_host, bind_port = split_host_port(opts.master_bind) if opts.master_bind else ("127.0.0.1", port)
        cmd += [
            "--master",
            "--expect-workers",
            str(opts.expect_workers or opts.workers),
            "--expect-workers-max-wait",
            f"{opts.worker_wait:g}",
            "--master-bind-host",
            bind_host,
            "--master-bind-port",
            str(bind_port),
        ]
    return cmd + user_classes


def _pump(stream, log: IO[bytes], lock: threading.Lock) -> None:
    """Copy a child's output to locust.log line by line, with secrets redacted."""
    for raw in iter(stream.readline, b""):
        line = redact(raw.decode("utf-8", "replace"))
        with lock, contextlib.suppress(OSError):  # a full disk: drop the line, keep draining (a child
            log.write(line.encode())  # blocked on a full pipe would never stop)
            log.flush()
    stream.close()


def start_locust(
    opts: RunOptions,
    driver: Driver,
    files: list[str],
    user_classes: list[str],
    host: str,
    run_dir: str,
    log: IO[bytes],
    worker_key: str | None = None,
    rules: list[dict] | None = None,
) -> tuple[list[subprocess.Popen], list[threading.Thread]]:
    """The Locust process(es) of a session, their output pumped to ``log`` (the first is the local process or
    the master); their settings and the live view's ``rules`` in ``run_dir``'s child.json."""
    config = child_config(opts, driver, run_dir, rules or []).write(os.path.join(run_dir, rundir.CHILD))
    env = child_env(worker_key, config)
    lock = threading.Lock()
    pumps: list[threading.Thread] = []

    def spawn(role: str, port: int | None = None) -> subprocess.Popen:
        cmd = locust_cmd(opts, driver, files, user_classes, host, role, port)
        p = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=os.getcwd(),
        )
        t = threading.Thread(target=_pump, args=(p.stdout, log, lock), daemon=True)
        t.start()
        pumps.append(t)
        return p

    if opts.expect_workers:
        return [spawn("master")], pumps
    if opts.workers == 1:
        return [spawn("local")], pumps
    port = free_port()
    return [spawn("master", port)] + [spawn("worker", port) for _ in range(opts.workers)], pumps

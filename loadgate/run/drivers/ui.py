"""``loadgate run --ui``: an exploratory session in Locust's own web UI, one run directory per test.

Locust runs with its web UI on 127.0.0.1 and the recorder in UI mode (:mod:`loadgate.plugin.ui_session`).
The driver follows the session's ``events.jsonl``: when a test starts it writes the run directory's
``run.json`` and shows the progress line; when it stops it collects the samples and hands the directory
to ``gate`` (analyse, gate, print), and the exit code of the session is the last test's. Ctrl-C stops
Locust (a running test is sealed first) and ends it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from typing import Callable

from loadgate.data import rundir
from loadgate.data.run_doc import write_run
from loadgate.errors import ConfigError, RunError
from loadgate.run.drivers.base import Driver, Running
from loadgate.run.options import RunOptions
from loadgate.run.problems import generator_problems
from loadgate.run.processes import STOP_GRACE_S, stop_process
from loadgate.run.progress import Progress
from loadgate.run.record import RunRecord
from loadgate.shared.child import ChildConfig

EVENTS = "events.jsonl"  # written by loadgate.plugin.ui_session in the Locust process
UI_READY_TIMEOUT_S = 60.0
DEFAULT_PORT = 8089


def check_port(port: int) -> None:
    """The UI port must be free on 127.0.0.1 before Locust is started (its own error is a traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ConfigError(
                f"--ui-port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); "
                "stop what uses it or pick another port with --ui-port N"
            ) from None


def _ui_up(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class _Events:
    """Reads the lines the Locust process appends to events.jsonl, each once."""

    def __init__(self, path: str) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


class _UiProgress(Progress):
    """The progress line of a UI test: no planned end, and its window starts at start + warmup."""

    def line(self, snap: dict) -> str:
        elapsed = snap.get("elapsed", 0)
        phase = "warmup" if elapsed < self.opts.warmup else "measuring"
        return f"[{elapsed:5.0f}s {phase}] " + super().line(snap).split("] ", 1)[1]


@dataclasses.dataclass
class _Test:
    rec: RunRecord
    opts: RunOptions
    progress: Progress


class WebUi(Driver):
    """Locust's web UI on 127.0.0.1 (no --headless): the user starts and stops the tests; each test's run
    directory is opened, collected and gated as it goes. ``last_code``: the last test's exit code."""

    name = "ui"
    one_run = False

    def __init__(self, port: int, gate: Callable[[str], int]) -> None:
        self.port, self.gate = port, gate
        self.tests: dict[str, _Test] = {}
        self.last_code = 0

    def check(self, opts: RunOptions) -> None:
        check_port(self.port)

    def folder(self, opts: RunOptions) -> str:
        return "ui-session"

    def locust_args(self, opts: RunOptions, host: str) -> list[str]:
        return [
            "-u",
            str(opts.users),
            "-r",
            f"{opts.spawn_rate:g}",
            "--host",
            host,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(self.port),
            "--stop-timeout",
            "2",
        ]

    def child_config(self, common: ChildConfig, opts: RunOptions, run_dir: str) -> ChildConfig:
        return dataclasses.replace(common, ui=run_dir, out=opts.out)  # each test makes its own run directory

    def ready(self, session: Running) -> None:
        main, url = session.procs[0], f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + UI_READY_TIMEOUT_S
        while not _ui_up(self.port) and main.poll() is None and time.monotonic() < deadline and not session.intr.reason:
            time.sleep(0.2)
        if main.poll() is not None or not _ui_up(self.port):
            raise RunError(
                f"Locust's web UI did not start at {url}; see {os.path.join(session.run_dir, rundir.LOCUST_LOG)}"
            )

    def banner(self, session: Running) -> str | None:
        o = session.opts
        return (
            f"loadgate: Locust's web UI is at http://127.0.0.1:{self.port}/ with the recorder on "
            f"({', '.join(o.requirements)}, select {o.select}, host {session.host}); each test you start and "
            f"stop there becomes a run directory in {o.out}. Ctrl-C here ends the session."
        )

    def drive(self, session: Running) -> None:
        """Follow the tests until Ctrl-C or Locust's end; then stop Locust and gate the test it sealed."""
        main, events = session.procs[0], _Events(os.path.join(session.run_dir, EVENTS))
        while True:
            for ev in events.new():
                self._on_event(ev, session)
            if session.intr.reason or main.poll() is not None:
                break
            for test in self.tests.values():
                test.progress.tick()
            time.sleep(0.2)
        for test in self.tests.values():
            test.progress.done()
        if session.intr.reason:
            session.say(f"loadgate: {session.intr.reason}; ending the web UI session")
        else:
            session.say(
                f"loadgate: Locust ended (exit code {main.returncode}); "
                f"see {os.path.join(session.run_dir, rundir.LOCUST_LOG)}"
            )
        stop_process(main, timeout=STOP_GRACE_S)
        for ev in events.new():  # the test a Ctrl-C stopped is sealed by Locust on its way out
            self._on_event(ev, session)
        for run_dir in list(self.tests):  # started, never sealed: Locust died; keep and gate what was recorded
            self._on_event(
                {"event": "stop", "run_dir": run_dir, "stop_reason": "Locust ended during the test"}, session
            )

    def run_problems(self, rec: RunRecord, opts: RunOptions, recorder: dict) -> list[str]:
        """No planned user count (the user sets it); the generator's load as in any run."""
        return generator_problems(recorder, opts.warmup)

    def _on_event(self, ev: dict, session: Running) -> None:
        if ev.get("event") == "start":
            self._started(ev, session)
        elif ev.get("event") == "stop" and ev.get("run_dir") in self.tests:
            self.last_code = self._stopped(ev, session)

    def _started(self, ev: dict, session: Running) -> None:
        run_dir, opts = ev.get("run_dir"), session.opts
        users = int(ev.get("users") or opts.users)
        test_opts = dataclasses.replace(
            opts, users=users, spawn_rate=float(ev.get("spawn_rate") or opts.spawn_rate), duration=0.0
        )
        rec = session.open_record(
            run_dir, test_opts, ev.get("host") or session.host, ev.get("start") or time.time(), mode="ui", duration=None
        )
        self.tests[run_dir] = _Test(rec, test_opts, _UiProgress(run_dir, test_opts, session.say))
        session.say(f"loadgate: test started in the web UI ({users} users): recording to {run_dir}")

    def _stopped(self, ev: dict, session: Running) -> int:
        run_dir = ev["run_dir"]
        test = self.tests.pop(run_dir)
        test.progress.done()
        reason = ev.get("stop_reason") or ""
        if reason.startswith("interrupted") or reason.startswith("Locust ended"):
            test.rec.interrupted = reason
        session.collect(test.rec, test.opts)
        # a UI test's window is [start + warmup, stop]; the user, not a plan, decides the load
        meta = test.rec.meta
        meta["spawning_complete"], meta["ramp_up_done"] = meta.get("ramp_up_done"), None
        meta["duration"] = max(0.0, (meta.get("end") or 0) - (meta.get("start") or 0))
        write_run(run_dir, meta)
        session.say(
            f"loadgate: test stopped ({reason or 'stopped'}); recorded {test.rec.samples} samples; analysing {run_dir}"
        )
        return self.gate(run_dir)

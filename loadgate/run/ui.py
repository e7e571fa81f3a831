"""``loadgate run --ui``: an exploratory session in Locust's own web UI, one run directory per test.

Locust runs as a child process with its web UI on 127.0.0.1 and the recorder in UI mode
(:mod:`loadgate.plugin.ui_session`). This process follows the session's ``events.jsonl``: when a test
starts it writes the run directory's ``run.json`` and shows the progress line; when it stops it
collects the samples and hands the directory to ``gate`` (analyse, gate, print), and the exit code of
the session is the last test's. Ctrl-C stops Locust (a running test is sealed first) and ends it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from typing import Callable, Mapping

from loadgate.data import rundir
from loadgate.data.run_doc import write_run
from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import ThresholdFile
from loadgate.shared.live_rules import rules_from_thresholds
from loadgate.run.options import RunOptions
from loadgate.run.processes import DemoTarget, stop_process
from loadgate.run.progress import Progress
from loadgate.run.runner import STOP_GRACE_S, Interrupt, RunRecord, collect, run_meta, start_locust, traceability
from loadgate.scenarios.catalog import Catalog

EVENTS = "events.jsonl"      # written by loadgate.plugin.ui_session in the Locust process
UI_READY_TIMEOUT_S = 60.0


def check_port(port: int) -> None:
    """The UI port must be free on 127.0.0.1 before Locust is started (its own error is a traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ConfigError(f"--ui-port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); "
                              "stop what uses it or pick another port with --ui-port N") from None


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


# Over the size/complexity limit (noqa): the UI session's event loop.
def serve(opts: RunOptions, catalog: Catalog, thresholds: Mapping[str, ThresholdFile],  # noqa: C901
          say: Callable[[str], None], gate: Callable[[str], int]) -> int:
    """Run the web UI session until Ctrl-C (or Locust ends); the last test's exit code, 0 if none ran."""
    check_port(opts.ui_port)
    started = time.time()
    session_dir = rundir.new_run_dir(opts.out, "ui-session", started)
    files, users = catalog.select(list(opts.requirements))
    scenario_host = next((u.host for u in users if u.host), None)
    last_code = 0
    with open(os.path.join(session_dir, rundir.LOCUST_LOG), "ab") as log, contextlib.ExitStack() as stack:
        host = opts.host or scenario_host
        embedded = host is None
        if embedded:
            host = stack.enter_context(DemoTarget(opts.latency_scale, log)).url
            say(f"loadgate: no --host given and none in the scenario: started the embedded demo target at {host}")
        intr = stack.enter_context(Interrupt())
        procs, pumps = start_locust(opts, files, [u.name for u in users], host, session_dir, log,
                                    rules=rules_from_thresholds(thresholds.values()))
        main = procs[0]
        stack.callback(stop_process, main, STOP_GRACE_S)
        url = f"http://127.0.0.1:{opts.ui_port}/"
        deadline = time.monotonic() + UI_READY_TIMEOUT_S
        while not _ui_up(opts.ui_port) and main.poll() is None and time.monotonic() < deadline and not intr.reason:
            time.sleep(0.2)
        if main.poll() is not None or not _ui_up(opts.ui_port):
            raise RunError(f"Locust's web UI did not start at {url}; see {os.path.join(session_dir, rundir.LOCUST_LOG)}")
        say(f"loadgate: Locust's web UI is at {url} with the recorder on ({', '.join(opts.requirements)}, "
            f"select {opts.select}, host {host}); each test you start and stop there becomes a run directory in "
            f"{opts.out}. Ctrl-C here ends the session.")
        events, tests = _Events(os.path.join(session_dir, EVENTS)), {}
        meta = {"host": host, "embedded": embedded, "files": files,
                "tasks": traceability(catalog, opts.requirements)}
        while True:
            for ev in events.new():
                last_code = _on_event(ev, tests, opts, thresholds, meta, say, gate, last_code)
            if intr.reason or main.poll() is not None:
                break
            for test in tests.values():
                test.progress.tick()
            time.sleep(0.2)
        for test in tests.values():
            test.progress.done()
        if intr.reason:
            say(f"loadgate: {intr.reason}; ending the web UI session")
        else:
            say(f"loadgate: Locust ended (exit code {main.returncode}); see {os.path.join(session_dir, rundir.LOCUST_LOG)}")
        stop_process(main, timeout=STOP_GRACE_S)
        for t in pumps:
            t.join(5)
        for ev in events.new():  # the test a Ctrl-C stopped is sealed by Locust on its way out
            last_code = _on_event(ev, tests, opts, thresholds, meta, say, gate, last_code)
        for run_dir in list(tests):  # started, never sealed: Locust died; keep and gate what was recorded
            last_code = _on_event({"event": "stop", "run_dir": run_dir, "stop_reason": "Locust ended during the test"},
                                  tests, opts, thresholds, meta, say, gate, last_code)
    return last_code


def _on_event(ev: dict, tests: dict, opts: RunOptions, thresholds: Mapping[str, ThresholdFile], meta: dict,
              say: Callable[[str], None], gate: Callable[[str], int], last_code: int) -> int:
    run_dir = ev.get("run_dir")
    if ev.get("event") == "start":
        users = int(ev.get("users") or opts.users)
        test_opts = dataclasses.replace(opts, users=users, spawn_rate=float(ev.get("spawn_rate") or opts.spawn_rate),
                                        duration=0.0)
        rec = RunRecord(run_dir)
        rec.meta = run_meta(test_opts, meta["files"], thresholds, ev.get("host") or meta["host"], meta["embedded"],
                            ev.get("start") or time.time())
        rec.meta.update(mode="ui", duration=None, titles={r: f.title for r, f in thresholds.items()},
                        tasks=meta["tasks"])
        write_run(run_dir, rec.meta)
        tests[run_dir] = _Test(rec, test_opts, _UiProgress(run_dir, test_opts, say))
        say(f"loadgate: test started in the web UI ({users} users): recording to {run_dir}")
        return last_code
    if ev.get("event") != "stop" or run_dir not in tests:
        return last_code
    test = tests.pop(run_dir)
    test.progress.done()
    reason = ev.get("stop_reason") or ""
    if reason.startswith("interrupted") or reason.startswith("Locust ended"):
        test.rec.interrupted = reason
    collect(test.rec, test.opts)
    # a UI test's window is [start + warmup, stop]; the user, not a plan, decides the load
    test.rec.meta["spawning_complete"], test.rec.meta["ramp_up_done"] = test.rec.meta.get("ramp_up_done"), None
    test.rec.meta["duration"] = max(0.0, (test.rec.meta.get("end") or 0) - (test.rec.meta.get("start") or 0))
    write_run(run_dir, test.rec.meta)
    say(f"loadgate: test stopped ({reason or 'stopped'}); recorded {test.rec.samples} samples; analysing {run_dir}")
    return gate(run_dir)

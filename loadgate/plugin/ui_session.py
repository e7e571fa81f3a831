"""The Locust side of ``loadgate run --ui``: each test started and stopped in the web UI records into its own run directory.

Loaded into the Locust process by :mod:`loadgate.plugin.hooks` when ``--loadgate-ui SESSION_DIR`` is given.
At test start the recorder is pointed at a new run directory; at test stop its stream is sealed
(``recorder.json`` written) and a line in ``SESSION_DIR/events.jsonl`` tells the CLI, which then
analyses and gates that directory. The web page gets a banner saying the recorder is on, and
``/loadgate`` answers what the recorder is doing, as JSON.
"""

from __future__ import annotations

import html
import json
import os
import time

from loadgate.data import rundir

EVENTS = "events.jsonl"  # one JSON object a line: {"event": "start"|"stop", "run_dir": ..., ...}
_RUNNING = ("spawning", "running")


class UiSession:
    """Turns the runner's test_start/test_stop into run directories and events for the CLI."""

    def __init__(self, environment, recorder, session_dir: str, out: str) -> None:
        self.env = environment
        self.rec = recorder
        self.session_dir = session_dir
        self.out = out
        self.run_dir: str | None = None
        self.tests = 0
        recorder.ui = True

    def _event(self, **fields) -> None:
        with open(os.path.join(self.session_dir, EVENTS), "a") as f:
            f.write(json.dumps({"t": time.time(), **fields}) + "\n")

    def on_test_start(self, environment, **_kw) -> None:
        now = time.time()
        self.run_dir = rundir.new_run_dir(self.out, (self.rec.requirements or ["ui"])[0], now)
        self.tests += 1
        self.rec.begin_test(self.run_dir, now)
        runner = environment.runner
        self._event(
            event="start",
            run_dir=self.run_dir,
            start=now,
            users=runner.target_user_count,
            spawn_rate=getattr(environment.parsed_options, "spawn_rate", None),
            host=environment.host,
        )

    def on_test_stop(self, environment, **_kw) -> None:
        """After the recorder's own test_stop (its last flush): seal the stream, tell the CLI."""
        if self.run_dir is None:
            return
        run_dir, self.run_dir = self.run_dir, None
        self.rec.seal(environment)
        self._event(
            event="stop", run_dir=run_dir, end=self.rec.meta.get("end"), stop_reason=self.rec.meta.get("stop_reason")
        )

    def on_quitting(self, environment, **_kw) -> None:
        """The session ends (Ctrl-C in the terminal): a test still running is stopped and sealed first."""
        if self.run_dir is not None and environment.runner.state in _RUNNING:
            self.rec.meta["stop_reason"] = "interrupted: the session ended while the test was running"
            environment.runner.stop()
        if self.run_dir is not None:  # stopping did not fire test_stop (it was stopping already)
            self.on_test_stop(environment)
        self._event(event="quit")

    def status(self) -> dict:
        return {
            "recorder": "on",
            "requirements": self.rec.requirements,
            "select": getattr(self.env.parsed_options, "loadgate_select", "tasks"),
            "out": self.out,
            "recording_to": self.run_dir,
            "tests": self.tests,
            "samples_recorded": self.rec.sent if self.run_dir else None,
        }

    def banner(self) -> str:
        reqs = ", ".join(self.rec.requirements) or "-"
        return (
            '<div id="loadgate-recorder" style="position:fixed;bottom:0;left:0;right:0;z-index:2000;'
            'padding:4px 12px;font:13px sans-serif;background:#1b5e20;color:#fff">'
            f"loadgate recorder on · {html.escape(reqs)} · each test you start and stop here becomes a run "
            f"directory in {html.escape(self.out)}, gated when it stops; the verdict prints in the terminal</div>"
        )


def install(environment, recorder, session_dir: str, out: str) -> UiSession:
    """Hook a UI session into ``environment`` (before the recorder's own listeners are added)."""
    session = UiSession(environment, recorder, session_dir, out)
    ev = environment.events
    ev.test_start.add_listener(session.on_test_start)
    web = environment.web_ui
    if web is not None:
        _extend_web_ui(web, session)
    return session


def add_late_listeners(environment, session: UiSession) -> None:
    """Listeners that must follow the recorder's: test_stop after its flush; quitting before its close
    (Locust fires quitting in reverse order of registration)."""
    environment.events.test_stop.add_listener(session.on_test_stop)
    environment.events.quitting.add_listener(session.on_quitting)


def _extend_web_ui(web, session: UiSession) -> None:
    from flask import jsonify, request

    @web.app.route("/loadgate")
    def loadgate_status():
        return jsonify(session.status())

    @web.app.after_request
    def add_banner(response):
        if request.path == "/" and response.status_code == 200 and response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", session.banner() + "</body>", 1))
        return response

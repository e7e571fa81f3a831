"""Registers the recorder with Locust's command line and event hooks (``locust_plugin.py`` calls :func:`install`)."""
from __future__ import annotations

import gc
import os

from locust import events

from loadgate.run import worker_auth
from loadgate.run import ui_session
from loadgate.run.columns import build_batch
from loadgate.run.inflight import MSG_UNANSWERED, InFlight
from loadgate.run.live import LiveMonitor
from loadgate.run.processes import stop_with_parent
from loadgate.run.recorder import MSG_DONE, MSG_SAMPLES, OFFLOAD_ROWS, Recorder


def _add_arguments(parser) -> None:
    g = parser.add_argument_group("loadgate recorder")
    g.add_argument("--loadgate-dir", default=os.environ.get("LOADGATE_DIR"),
                   help="run directory the recorder writes into (master/local)")
    g.add_argument("--loadgate-requirements", default="",
                   help="comma-separated requirement IDs of this run")
    g.add_argument("--loadgate-duration", type=float, default=None,
                   help="seconds at full user count after spawning completes")
    g.add_argument("--loadgate-warmup", type=float, default=0.0,
                   help="seconds after ramp-up left out of the analysis: a request still unanswered at the end that "
                   "was sent before is recorded from the window's start")
    g.add_argument("--loadgate-flush", type=float, default=1.0, help="seconds between batches")
    g.add_argument("--loadgate-offload-rows", type=int, metavar="N",
                   default=os.environ.get("LOADGATE_OFFLOAD_ROWS", OFFLOAD_ROWS),
                   help="batches of N rows or more are built, written and scanned on a native thread, smaller "
                   "ones on the event loop, where the thread's GIL hand-offs would cost more (~2%% of the "
                   "generator's throughput on a shared core); env LOADGATE_OFFLOAD_ROWS")
    g.add_argument("--loadgate-rules", default=None, help="JSON file of alert rules for the live view")
    g.add_argument("--loadgate-select", default="tasks", choices=("tasks", "journeys"),
                   help="journeys: the User classes run whole; untagged tasks record an empty requirement")
    g.add_argument("--loadgate-ui", default=None, metavar="SESSION_DIR",
                   help="web UI session: each test becomes a run directory under --loadgate-out")
    g.add_argument("--loadgate-out", default="reports", help="where a UI session's run directories go")


def _on_init(environment, **_kw) -> None:
    opts = environment.parsed_options
    if environment.runner is None or opts is None:
        return
    reqs = [r for r in (opts.loadgate_requirements or "").split(",") if r]
    rec = Recorder(environment, opts.loadgate_dir, reqs, opts.loadgate_flush, opts.loadgate_duration,
                   LiveMonitor.from_file(opts.loadgate_rules))
    rec.offload_rows = opts.loadgate_offload_rows
    # The first use of Arrow's compute functions initialises them: pay it now, before any user
    # starts, not in the first flush, where it would stall every user.
    rec.columns.append_checked(0.0, 0.0, 0, 0, 0, rec.columns.new_key("", ""), 0, 0)
    rec.monitor.scan(build_batch(rec.columns.take(), "", ""))
    rec.columns.keys.clear()
    del rec.columns.key_types[:], rec.columns.key_names[:]
    # The recorder's imports (pyarrow, numpy: ~25k objects; not pandas, which nothing here may import)
    # would make every full garbage collection of the run longer than plain Locust's; what exists now
    # lives as long as the process.
    gc.collect()
    gc.freeze()
    environment.loadgate_recorder = rec
    session = ui_session.install(environment, rec, opts.loadgate_ui, opts.loadgate_out) if opts.loadgate_ui else None
    ev = environment.events
    ev.request.add_listener(rec.on_request)
    ev.test_start.add_listener(rec.on_test_start)
    ev.spawning_complete.add_listener(rec.on_spawning_complete)
    in_flight = InFlight(environment, rec)
    ev.test_start.add_listener(in_flight.on_test_start)
    ev.spawning_complete.add_listener(in_flight.on_spawning_complete)
    ev.test_stopping.add_listener(in_flight.on_test_stopping)
    ev.test_stop.add_listener(in_flight.on_test_stop)  # before the recorder's: a worker's count precedes its last batch
    ev.test_stop.add_listener(rec.on_test_stop)
    ev.quitting.add_listener(rec.close)
    if session is not None:
        ui_session.add_late_listeners(environment, session)
    if rec.is_master:
        rec.meta["refused_workers"] = worker_auth.REFUSED  # filled by the socket monitor; in recorder.json at the end
        environment.runner.register_message(MSG_SAMPLES, rec.on_samples)
        environment.runner.register_message(MSG_DONE, rec.on_done)
        environment.runner.register_message(MSG_UNANSWERED, in_flight.on_message)
    rec.start()


def install() -> None:
    """Register the recorder with Locust's global event hooks (called by the plugin file); with a worker key,
    CURVE on Locust's sockets (this runs before Locust creates its runner and sockets)."""
    worker_auth.install()
    # Started by loadgate run/worker: a loadgate killed hard leaves no Locust behind. From import on, not
    # from init: a worker's init waits (up to a minute) for its master to answer.
    stop_with_parent()
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)

"""Registers the recorder with Locust's command line and event hooks (``locust_plugin.py`` calls :func:`install`)."""

from __future__ import annotations

import gc
import os

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadgate.plugin import worker_auth
from loadgate.plugin import ui_session
from loadgate.plugin.columns import build_batch
from loadgate.plugin.inflight import MSG_UNANSWERED, InFlight
from loadgate.plugin.live import LiveMonitor
from loadgate.plugin.recorder import OFFLOAD_ROWS, Recorder
from loadgate.plugin.recorder_local import LocalRecorder
from loadgate.plugin.recorder_master import MasterRecorder
from loadgate.plugin.recorder_worker import WorkerRecorder
from loadgate.shared.child import CONFIG_ENV, read_child_config, stop_with_parent


def _add_arguments(parser) -> None:
    """The recorder's options; their defaults are the settings the CLI wrote for this process (child.json)."""
    cfg = read_child_config()
    g = parser.add_argument_group("loadgate recorder")
    g.add_argument(
        "--loadgate-dir",
        default=cfg.dir,
        help="run directory the recorder writes into (master/local); env LOADGATE_DIR",
    )
    g.add_argument(
        "--loadgate-requirements",
        default=",".join(cfg.requirements),
        help="comma-separated requirement IDs of this run",
    )
    g.add_argument(
        "--loadgate-duration",
        type=float,
        default=cfg.duration,
        help="seconds at full user count after spawning completes",
    )
    g.add_argument(
        "--loadgate-warmup",
        type=float,
        default=cfg.warmup,
        help="seconds after ramp-up left out of the analysis: a request still unanswered at the end that "
        "was sent before is recorded from the window's start",
    )
    g.add_argument("--loadgate-flush", type=float, default=cfg.flush, help="seconds between batches")
    g.add_argument(
        "--loadgate-offload-rows",
        type=int,
        metavar="N",
        default=os.environ.get("LOADGATE_OFFLOAD_ROWS", OFFLOAD_ROWS),
        help="batches of N rows or more are built, written and scanned on a native thread, smaller "
        "ones on the event loop, where the thread's GIL hand-offs would cost more (~2%% of the "
        "generator's throughput on a shared core); env LOADGATE_OFFLOAD_ROWS",
    )
    g.add_argument(
        "--loadgate-rules",
        default=None,
        help="JSON file of alert rules for the live view (default: those of the CLI's child.json)",
    )
    g.add_argument(
        "--loadgate-select",
        default=cfg.select,
        choices=("tasks", "journeys"),
        help="journeys: the User classes run whole; untagged tasks record an empty requirement",
    )
    g.add_argument(
        "--loadgate-ui",
        default=cfg.ui,
        metavar="SESSION_DIR",
        help="web UI session: each test becomes a run directory under --loadgate-out",
    )
    g.add_argument("--loadgate-out", default=cfg.out, help="where a UI session's run directories go")


def _worker_options(opts) -> None:
    """A worker writes no run directory: the options of the process that does go back to their defaults
    (the master forwards its own with each spawn message, as Locust does with every custom option)."""
    opts.loadgate_dir, opts.loadgate_duration = os.environ.get("LOADGATE_DIR"), None
    opts.loadgate_ui, opts.loadgate_out = None, "reports"


def recorder_class(runner) -> type[Recorder]:
    """The recorder of this process's role, chosen once: a worker ships its batches, a master collects them,
    one process alone writes them."""
    if isinstance(runner, WorkerRunner):
        return WorkerRecorder
    if isinstance(runner, MasterRunner):
        return MasterRecorder
    return LocalRecorder


def _on_init(environment, **_kw) -> None:
    opts = environment.parsed_options
    if environment.runner is None or opts is None:
        return
    if isinstance(environment.runner, WorkerRunner) and os.environ.get(CONFIG_ENV):
        _worker_options(opts)
    reqs = [r for r in (opts.loadgate_requirements or "").split(",") if r]
    monitor = (
        LiveMonitor.from_file(opts.loadgate_rules) if opts.loadgate_rules else LiveMonitor(read_child_config().rules)
    )
    rec = recorder_class(environment.runner)(
        environment, opts.loadgate_dir, reqs, opts.loadgate_flush, opts.loadgate_duration, monitor
    )
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
    rec.register(environment)
    if rec.collects:
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

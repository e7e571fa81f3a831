"""``loadgate run``: Locust headless with a planned user count and time; the CLI waits for its end."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from typing import Mapping

from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.drivers.base import Driver, Running
from loadgate.run.options import RunOptions
from loadgate.run.problems import generator_problems
from loadgate.run.processes import STOP_GRACE_S, stop_process
from loadgate.run.progress import Progress
from loadgate.run.record import RunRecord
from loadgate.run.resource_watch import ResourceWatch
from loadgate.shared.child import ChildConfig
from loadgate.sources.collect import is_loopback


class Headless(Driver):
    """-u/-r/--run-time; the progress line while it runs; a resource alert with abort_on_fail stops it."""

    name = "headless"

    def __init__(self, prometheus: str | None = None) -> None:
        self.prometheus = prometheus  # overrides the threshold files' server for resource alerts with abort_on_fail

    @classmethod
    def for_run(cls, flags: Mapping, files: Mapping[str, ThresholdFile]) -> Driver | None:
        return cls(flags.get("prometheus"))

    def locust_args(self, opts: RunOptions, host: str) -> list[str]:
        return [
            "--headless",
            "-u",
            str(opts.users),
            "-r",
            f"{opts.spawn_rate:g}",
            "--host",
            host,
            "--run-time",
            f"{int(opts.time_limit_s) + 1}s",
            "--only-summary",
            "--stop-timeout",
            "2",
        ]

    def child_config(self, common: ChildConfig, opts: RunOptions, run_dir: str) -> ChildConfig:
        return replace(common, dir=run_dir, duration=float(f"{opts.duration:g}"))

    def samples_locally(self, host: str, thresholds: Mapping[str, ThresholdFile]) -> bool:
        """When a threshold asks for this machine's resources and the target runs on it."""
        return is_loopback(host) and any(
            t.resource is not None and t.resource.source == "local" for tf in thresholds.values() for t in tf.thresholds
        )

    def banner(self, session: Running) -> str | None:
        o = session.opts
        return (
            f"loadgate: running {', '.join(o.requirements)} with {o.users} users "
            f"(spawn rate {o.spawn_rate:g}/s, {o.duration:g}s at full load, warmup {o.warmup:g}s) "
            f"against {session.host}; writing {session.run_dir}"
        )

    def drive(self, session: Running) -> None:
        with ResourceWatch(session.run_dir, session.thresholds.values(), session.sampler, self.prometheus) as watch:
            _wait(
                session.procs,
                session.opts,
                session.intr,
                session.rec,
                Progress(session.run_dir, session.opts, session.say),
                watch,
            )

    def run_problems(self, rec: RunRecord, opts: RunOptions, recorder: dict) -> list[str]:
        return [*_user_problems(rec, opts, recorder), *generator_problems(recorder, opts.warmup)]


def _user_problems(rec: RunRecord, opts: RunOptions, recorder: dict) -> list[str]:
    """The planned user count, never reached (unless the run was stopped first)."""
    if recorder.get("ramp_up_done") is None and not rec.interrupted and not rec.aborted:
        return [f"ramp-up to {opts.users} users never completed (reached {recorder.get('users_reached', 0)})"]
    if (recorder.get("users_reached") or 0) < opts.users and not (rec.interrupted or rec.aborted):
        return [f"users reached {recorder.get('users_reached')} < users requested {opts.users}"]
    return []


def _wait(
    procs: list[subprocess.Popen],
    opts: RunOptions,
    intr,
    rec: RunRecord,
    progress: Progress,
    watch: ResourceWatch | None = None,
) -> None:
    main = procs[0]
    say = progress.say
    deadline = time.monotonic() + opts.time_limit_s + 60
    while main.poll() is None:
        progress.tick()
        if intr.reason:
            progress.done()
            say(f"loadgate: {intr.reason}; stopping Locust and keeping what was recorded")
            rec.interrupted = intr.reason
            stop_process(main, timeout=STOP_GRACE_S)
            break
        if watch is not None and watch.reason:  # a resource alert with abort_on_fail held over its window
            progress.done()
            say(f"loadgate: {watch.reason}; stopping Locust")
            rec.aborted = watch.reason
            stop_process(main, timeout=STOP_GRACE_S)
            break
        if time.monotonic() > deadline:
            rec.problems.append(f"Locust did not stop within {opts.time_limit_s + 60:.0f}s; it was killed")
            stop_process(main, timeout=STOP_GRACE_S)
            break
        time.sleep(0.2)
    progress.done()
    for p in procs[1:]:  # workers: their samples are confirmed by now; they quit when the master does
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            stop_process(p, timeout=2)
    for p in procs:
        stop_process(p, timeout=2)
    rec.meta["locust_exit_code"] = main.returncode

"""One session of load: the work every run does, whichever driver steers it.

A :class:`Session` makes the session's folder (the run directory, or a web UI session's folder), resolves
the host (starting the embedded demo target when there is none), writes run.json as the run starts,
samples this machine when the driver asks, writes child.json and starts the Locust process(es) with their
output pumped to locust.log, and turns SIGINT/SIGTERM into a flag while load runs. The driver
(:mod:`loadgate.run.drivers`) then waits for or steers the run; afterwards the session collects it
(:mod:`loadgate.run.collect`). Locust runs as a child process with the recorder plugin loaded; this
process never imports it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from typing import IO, Callable, Mapping

from loadgate.data import rundir
from loadgate.data.run_doc import write_run
from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.collect import collect
from loadgate.run.drivers.base import Driver
from loadgate.run.interrupt import Interrupt, Interrupted
from loadgate.run.launch import start_locust
from loadgate.run.local_resources import LocalSampler
from loadgate.run.options import RunOptions
from loadgate.run.processes import STOP_GRACE_S, DemoTarget, stop_process
from loadgate.run.record import RunRecord, run_meta, traceability
from loadgate.scenarios.catalog import Catalog
from loadgate.shared.live_rules import rules_from_thresholds


class Session:
    """Prepared once (options, scenarios, thresholds, the driver); :meth:`run` starts and ends it.

    With ``worker_key`` the master and its workers talk over CURVE (:mod:`loadgate.plugin.worker_auth`).
    """

    def __init__(
        self,
        opts: RunOptions,
        catalog: Catalog,
        thresholds: Mapping[str, ThresholdFile],
        say: Callable[[str], None],
        driver: Driver,
        worker_key: str | None = None,
    ) -> None:
        self.opts, self.catalog, self.thresholds, self.say = opts, catalog, thresholds, say
        self.driver, self.worker_key = driver, worker_key
        self.files, self.users = catalog.select(list(opts.requirements))
        self.sampler: LocalSampler | None = None
        self.procs: list[subprocess.Popen] = []
        self.pumps: list[threading.Thread] = []

    def run(self) -> RunRecord:
        """Run it: for a one-run driver, samples.parquet and run.json are in the returned record's directory.

        From the folder made to the samples saved, SIGINT/SIGTERM is a flag: the run stops, its children are
        stopped and what was recorded is saved whatever the moment. One that came after the run is raised then
        (:class:`Interrupted`)."""
        self.driver.check(self.opts)
        started = time.time()
        self.run_dir = rundir.new_run_dir(self.opts.out, self.driver.folder(self.opts), started)
        self.rec = RunRecord(self.run_dir)
        with Interrupt() as intr:
            self.intr = intr
            with open(os.path.join(self.run_dir, rundir.LOCUST_LOG), "ab") as log, contextlib.ExitStack() as stack:
                self._start(stack, log, started)
                self.driver.drive(self)
                for t in self.pumps:
                    t.join(5)
            if self.driver.one_run:
                self.collect(self.rec, self.opts)
        if self.driver.one_run and intr.reason and not self.rec.interrupted:
            late = Interrupted(intr.reason)
            late.run_dir, late.phase = self.run_dir, "saving the samples"
            raise late
        return self.rec

    def _start(self, stack: contextlib.ExitStack, log: IO[bytes], started: float) -> None:
        """Host or demo target, run.json, the sampler, Locust; then the driver's banner."""
        self.host = self.opts.host or next((u.host for u in self.users if u.host), None)
        self.embedded = self.host is None
        if self.host is None:
            self.host = stack.enter_context(DemoTarget(self.opts.latency_scale, log)).url
            self.say(
                f"loadgate: no --host given and none in the scenario: started the embedded demo target at {self.host}"
            )
        if self.driver.one_run:
            self.rec = self.open_record(self.run_dir, self.opts, self.host, started)
        if self.driver.samples_locally(self.host, self.thresholds):
            self.sampler = stack.enter_context(LocalSampler(self.run_dir))  # once a second, for the whole session
        self.procs, self.pumps = start_locust(
            self.opts,
            self.driver,
            self.files,
            [u.name for u in self.users],
            self.host,
            self.run_dir,
            log,
            self.worker_key,
            rules_from_thresholds(self.thresholds.values()),
        )
        stack.callback(stop_process, self.procs[0], STOP_GRACE_S)  # on any error: nothing left running
        self.driver.ready(self)
        banner = self.driver.banner(self)
        if banner:
            self.say(banner)

    def open_record(self, run_dir: str, opts: RunOptions, host: str, started: float, **extra) -> RunRecord:
        """A run directory's record, its run.json written as the run starts (``extra``: fields of this driver)."""
        rec = RunRecord(run_dir)
        rec.meta = run_meta(opts, self.driver.name, self.files, self.thresholds, host, self.embedded, started)
        rec.meta.update(extra)
        rec.meta.update(
            titles={r: f.title for r, f in self.thresholds.items()}, tasks=traceability(self.catalog, opts.requirements)
        )
        write_run(run_dir, rec.meta)
        return rec

    def collect(self, rec: RunRecord, opts: RunOptions) -> None:
        """After the run: samples.parquet, run.json completed, the run's problems (the driver's included)."""
        collect(rec, opts, self.driver.run_problems)

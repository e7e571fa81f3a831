"""The interface between a :class:`loadgate.run.session.Session` and the way it drives Locust.

The session does what every run does (run directory, host or demo target, child.json, the Locust
process(es) and their log, the local resource sampler, interrupts, collecting the samples); a driver says
what differs: what it adds to Locust's command line and child.json, its banner, how it waits for or steers
the run while Locust goes, and which run problems apply to it.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from typing import Callable, ClassVar, Mapping, Protocol

from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.interrupt import Interrupt
from loadgate.run.local_resources import LocalSampler
from loadgate.run.options import RunOptions
from loadgate.run.record import RunRecord
from loadgate.shared.child import ChildConfig


class Running(Protocol):
    """What a driver sees of its session once the Locust process(es) started."""

    opts: RunOptions
    thresholds: Mapping[str, ThresholdFile]
    say: Callable[[str], None]
    run_dir: str  # the session's folder: the run directory, or a web UI session's folder
    rec: RunRecord  # the run's record (a one-run driver's; a web UI session keeps one per test)
    host: str
    procs: list[subprocess.Popen]  # the local process or the master first, then local workers
    intr: Interrupt  # SIGINT/SIGTERM as a flag (``intr.reason``)
    sampler: LocalSampler | None

    def open_record(self, run_dir: str, opts: RunOptions, host: str, started: float, **extra) -> RunRecord:
        """A run directory's record, its run.json written as the run starts."""
        ...

    def collect(self, rec: RunRecord, opts: RunOptions) -> None:
        """After the run: samples.parquet, run.json completed, the run's problems (this driver's included)."""
        ...


class Driver(ABC):
    """One way to drive a session's Locust: ``loadgate run`` headless, ``loadgate capacity``, ``run --ui``."""

    name: ClassVar[str]  # run.json's options.driver
    one_run: ClassVar[bool] = True  # the session's folder is one run directory, collected when Locust ends;
    # False: the driver opens and collects its own (a web UI session's tests)

    @classmethod
    def for_run(cls, flags: Mapping, files: Mapping[str, ThresholdFile]) -> Driver | None:
        """This driver for ``loadgate run`` with these flags and threshold files, or None if it does not apply
        (``loadgate run`` takes the first of :data:`loadgate.run.drivers.RUN_DRIVERS` that answers)."""
        return None

    def check(self, opts: RunOptions) -> None:
        """What must hold before anything starts (ConfigError otherwise)."""
        return None

    def folder(self, opts: RunOptions) -> str:
        """The name the session's folder is made from (with the time)."""
        return opts.requirements[0]

    def locust_files(self) -> list[str]:
        """Files loaded with ``-f`` beside the scenarios and the plugin, by the process that runs the users."""
        return []

    @abstractmethod
    def locust_args(self, opts: RunOptions, host: str) -> list[str]:
        """Locust flags of the local process or the master: the user count, its time, headless or the web UI."""

    @abstractmethod
    def child_config(self, common: ChildConfig, opts: RunOptions, run_dir: str) -> ChildConfig:
        """child.json: ``common`` (requirements, selection, flush, warmup, rules) with this driver's part."""

    def samples_locally(self, host: str, thresholds: Mapping[str, ThresholdFile]) -> bool:
        """Whether this machine's CPU, memory and disks are sampled for the whole session."""
        return False

    def ready(self, session: Running) -> None:
        """Wait until Locust can be driven (RunError if it cannot); before the banner."""
        return None

    @abstractmethod
    def banner(self, session: Running) -> str | None:
        """The line that says what runs (None: nothing to say)."""

    @abstractmethod
    def drive(self, session: Running) -> None:
        """Wait for or steer the run until Locust is done, stopping it on an interrupt; sets the record's
        ``interrupted``/``aborted`` and ``meta["locust_exit_code"]`` for a one-run driver."""

    def run_problems(self, rec: RunRecord, opts: RunOptions, recorder: dict) -> list[str]:
        """This driver's problems of a run the recorder saw to its end (``recorder``: its recorder.json)."""
        return []

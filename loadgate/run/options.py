"""Options of ``loadgate run``: flags over the threshold files' ``load:`` blocks, checked before anything runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from loadgate.errors import ConfigError
from loadgate.gate.thresholds import ThresholdFile
from loadgate.run import arrival
from loadgate.shared.keys import worker_auth
from loadgate.run.processes import split_host_port

DEFAULT_USERS = 10
DEFAULT_DURATION = 60.0


@dataclass(frozen=True)
class RunOptions:
    requirements: tuple[str, ...]
    users: int
    spawn_rate: float
    duration: float
    warmup: float
    host: str | None
    scenarios: str
    thresholds: str
    out: str
    workers: int = 1
    expect_workers: int = 0  # remote workers the master waits for (no local ones then)
    master_bind: str | None = None  # HOST:PORT the master listens on for remote workers
    worker_wait: float = 60.0
    allow_worker_loss: bool = False
    worker_auth: str | None = None  # master's channel: curve (shared key), loopback or insecure; never the key
    strict: bool = False
    command_line: tuple[str, ...] = ()
    flush_interval: float = 1.0
    latency_scale: float = 1.0  # demo target only
    select: str = "tasks"  # load.select: "tasks" (Locust's tag filter) or "journeys" (whole User classes)
    # open model (load.arrival, --arrival-rate): iterations per second (the flag, else the first requirement's),
    # the pool (users is then the pool too, spawned at once) and each requirement's shape; None/(): closed model
    arrival_rate: float | None = None
    max_users: int | None = None
    arrival_shapes: arrival.Shapes = ()
    # how the run is driven (headless, --ui, capacity) is its driver's: loadgate.run.drivers

    @property
    def ramp_up_s(self) -> float:
        return self.users / self.spawn_rate

    @property
    def time_limit_s(self) -> float:
        """Hard bound on Locust's run time: a ramp-up three times slower than planned, plus margin."""
        return self.ramp_up_s * 3 + self.duration + 30 + (self.worker_wait if self.expect_workers else 0)


def resolve_options(flags: Mapping, files: Mapping[str, ThresholdFile], command_line: list[str]) -> RunOptions:
    """Flags override the ``load:`` block of the requirements' threshold files (first one wins)."""
    reqs = tuple(flags["requirements"])
    loads = [files[r].load for r in reqs if r in files]

    def pick(flag: str, attr: str, default):
        if flags.get(flag) is not None:
            return flags[flag]
        for load in loads:
            value = getattr(load, attr)
            if value is not None:
                return value
        return default

    shapes = arrival.resolve(flags, files, reqs)
    users = arrival.pool_size(shapes) if shapes else int(pick("users", "users", DEFAULT_USERS))
    if users <= 0:
        raise ConfigError(f"--users {users}: expected a whole number of users > 0")
    spawn_rate = float(users) if shapes else float(pick("spawn_rate", "spawn_rate", min(users, 100)))
    if spawn_rate <= 0:
        raise ConfigError(f"--spawn-rate {spawn_rate:g}: expected users per second > 0")
    duration = float(pick("duration", "duration", DEFAULT_DURATION))
    if duration <= 0:
        raise ConfigError(f"--duration {duration:g}s: expected a time at full load > 0, like 30s or 5m")
    warmup = float(pick("warmup", "warmup", 0.0))
    if warmup >= duration:
        raise ConfigError(
            f"--warmup {warmup:g}s: must be shorter than --duration {duration:g}s, or nothing is left to analyse"
        )
    workers, expect, bind, auth = _load_generators(flags)
    host = pick("host", "host", None)
    if host is not None and not (host.startswith("http://") or host.startswith("https://")):
        raise ConfigError(f"--host {host}: expected a URL like http://127.0.0.1:8080")
    selects = {files[r].load.select or "tasks" for r in reqs if r in files}
    if len(selects) > 1:
        journeys = [files[r].path for r in reqs if r in files and files[r].load.select == "journeys"]
        raise ConfigError(
            f"{journeys[0]}: load.select: journeys, but another requirement of this run selects tasks; "
            "run them separately or give their threshold files the same 'select:'"
        )
    _check_ui(flags, workers, expect)
    _check_offload()
    return RunOptions(
        requirements=reqs,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        warmup=warmup,
        host=host,
        scenarios=flags["scenarios"],
        thresholds=flags["thresholds"],
        out=flags["out"],
        workers=workers,
        expect_workers=expect,
        master_bind=bind,
        worker_wait=float(flags.get("worker_wait") or 60.0),
        allow_worker_loss=bool(flags.get("allow_worker_loss")),
        worker_auth=auth,
        strict=bool(flags.get("strict")),
        command_line=tuple(command_line),
        latency_scale=float(flags.get("latency_scale") or 1.0),
        select=selects.pop() if selects else "tasks",
        arrival_rate=arrival.headline_rate(shapes),
        max_users=users if shapes else None,
        arrival_shapes=shapes,
    )


def _load_generators(flags: Mapping) -> tuple[int, int, str | None, str | None]:
    """Local workers, remote workers expected, the master's bind address and its channel's protection."""
    workers = int(flags.get("workers") or 1)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected 1 or more load-generator processes")
    expect = int(flags.get("expect_workers") or 0)
    bind = flags.get("master_bind")
    if expect and workers > 1:
        raise ConfigError(
            f"--expect-workers {expect} with --workers {workers}: remote workers replace local ones; use one of them"
        )
    if bind and not expect:
        raise ConfigError(f"--master-bind {bind}: only needed with --expect-workers N (remote workers)")
    auth = None
    if expect:
        bind = bind or "127.0.0.1:5557"
        try:
            bind_host, _port = split_host_port(bind)
        except ValueError:
            raise ConfigError(
                f"--master-bind {bind}: expected HOST:PORT, like 127.0.0.1:5557 or 0.0.0.0:5557"
            ) from None
        auth = worker_auth(bind_host, flags.get("worker_key"), bool(flags.get("insecure_workers")))
    elif workers > 1:
        auth = "curve" if flags.get("worker_key") else "loopback"  # local workers: the master binds 127.0.0.1
    return workers, expect, bind, auth


def _check_ui(flags: Mapping, workers: int, expect: int) -> None:
    ui = bool(flags.get("ui"))
    if ui and (workers > 1 or expect):
        raise ConfigError(
            "--ui runs one load-generator process; drop --workers/--expect-workers for an "
            "exploratory session, or run headless"
        )
    if flags.get("ui_port") is not None and not ui:
        raise ConfigError(f"--ui-port {flags['ui_port']}: only meaningful with --ui")


def _check_offload() -> None:
    offload = os.environ.get("LOADGATE_OFFLOAD_ROWS", "0").strip()
    if not offload.lstrip("-").isdigit():  # read by the recorder in each Locust process: check it here, once
        raise ConfigError(
            f"environment variable LOADGATE_OFFLOAD_ROWS={offload!r}: expected a whole number of "
            "rows, like 20000 (the default when it is not set)"
        )

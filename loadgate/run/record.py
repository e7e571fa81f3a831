"""What a run directory's ``run.json`` starts with, and the record of the run the CLI keeps while it goes."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Mapping

from loadgate.data import rundir
from loadgate.data.run_doc import RunDoc
from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.options import RunOptions
from loadgate.scenarios.catalog import Catalog
from loadgate.shared.keys import INSECURE_NOTE


@dataclass
class RunRecord:
    """What the run left behind, for run.json and the gate."""

    run_dir: str
    problems: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    samples: int = 0
    interrupted: str | None = None
    aborted: str | None = None


def traceability(catalog: Catalog, requirements) -> dict[str, list[str]]:
    """The tasks of each requirement as report.html lists them: ``file:line name (user class)``."""
    return {
        r: [
            f"{t.file}:{t.line or '?'} {t.name}"
            + ("" if t.name.startswith(f"{t.user_class}.") else f" (user {t.user_class})")
            for t in catalog.tasks_for(r)
        ]
        for r in requirements
    }


def run_meta(
    opts: RunOptions,
    driver: str,
    files: list[str],
    thresholds: Mapping[str, ThresholdFile],
    host: str,
    embedded: bool,
    started: float,
) -> RunDoc:
    """run.json as a run starts; ``driver`` names the way it was driven (``options.driver``)."""
    hashes = {f: rundir.sha256_file(f) for f in files}
    return {
        "schema": "loadgate.run/1",
        "requirements": list(opts.requirements),
        "users": opts.users,
        "spawn_rate": opts.spawn_rate,
        "duration": opts.duration,
        "warmup": opts.warmup,
        "host": host,
        "embedded_target": embedded,
        "workers": opts.expect_workers or opts.workers,
        "remote_workers": bool(opts.expect_workers),
        "worker_auth": opts.worker_auth,
        "notes": [INSECURE_NOTE] if opts.worker_auth == "insecure" else [],
        "strict": opts.strict,
        "start": started,
        "ramp_up_done": None,
        "end": None,
        "versions": rundir.versions(),
        "git": rundir.git_commit(),
        "command_line": list(opts.command_line),
        "cwd": os.getcwd(),
        "scenario_files": hashes,
        "threshold_files": {tf.path: tf.sha256 for tf in thresholds.values()},  # as parsed, not re-read
        "options": {**asdict(opts), "driver": driver},
    }

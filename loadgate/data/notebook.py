"""A run directory for notebooks: ``loadgate.open_run(RUN_DIR)`` → samples as pandas, the JSON files as dicts.

Everything is read on first use, so opening a large run to look at its verdict reads no samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TYPE_CHECKING

from loadgate.data import rundir
from loadgate.data.run_doc import RunDoc, read_run
from loadgate.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Run:
    """One run directory. ``samples`` is ``samples.parquet`` as a DataFrame (string columns categorical);
    ``run``, ``summary`` and ``verdict`` are ``run.json``, ``summary.json`` and ``verdict.json``."""

    path: str

    @cached_property
    def samples(self) -> "pd.DataFrame":
        from loadgate.data.samples import read_samples

        # dictionary-encoded strings become pandas categoricals: a few distinct names over millions of rows
        df: pd.DataFrame = read_samples(os.path.join(self.path, rundir.SAMPLES), dictionary=True).to_pandas()
        return df

    @cached_property
    def run(self) -> RunDoc:
        return read_run(self.path)

    @cached_property
    def summary(self) -> dict[str, Any]:
        return rundir.read_json(self.path, rundir.SUMMARY)

    @cached_property
    def verdict(self) -> dict[str, Any]:
        return rundir.read_json(self.path, rundir.VERDICT)

    @property
    def window(self) -> tuple[float, float]:
        """The analysis window (Unix s): [ramp-up done + warmup, end], as ``summary.json`` says."""
        w = self.summary["window"]
        return float(w["start"]), float(w["end"])

    def in_window(self) -> "pd.DataFrame":
        """The samples the gate judged: those that started inside the analysis window."""
        start, end = self.window
        df = self.samples
        inside: pd.DataFrame = df[(df["timestamp"] >= start) & (df["timestamp"] <= end)]
        return inside

    def __repr__(self) -> str:
        verdict = self.verdict["verdict"] if os.path.exists(os.path.join(self.path, rundir.VERDICT)) else None
        return f"Run({self.path!r}, verdict={verdict!r})"


def open_run(run_dir: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``loadgate run``; ConfigError if it is not one."""
    path = os.fspath(run_dir)
    rundir.check_run_dir(path)
    if not any(os.path.exists(os.path.join(path, name)) for name in (rundir.RUN, rundir.SAMPLES)):
        raise ConfigError(
            f"{path}: no {rundir.RUN} or {rundir.SAMPLES}; pass a folder written by 'loadgate run' "
            "(e.g. reports/20260101T120000Z-REQ-PERF-001)"
        )
    return Run(path)

"""Test oracles: whole-table references that the bounded-memory code is checked against, never used by it."""

from __future__ import annotations

import os

import numpy as np

from loadgate.analysis.run_window import run_window
from loadgate.data import rundir
from loadgate.data.run_doc import read_run
from loadgate.data.samples import read_samples
from loadgate.errors import ConfigError
from loadgate.history.compare import Group, Key, RunSamples, scope_keys


def load_run(run_dir: str) -> RunSamples:
    """The samples of ``run_dir`` in its analysis window (whole file if it has no run.json), grouped, every
    response time held: the whole-table reference :func:`loadgate.history.compare_rows.load_pair` (bounded
    memory, what the commands use) is tested against. A test oracle: no command uses it."""
    rundir.check_run_dir(run_dir)
    path = os.path.join(run_dir, rundir.SAMPLES)
    if not os.path.exists(path):
        raise ConfigError(f"{path}: missing; compare needs the raw samples of both runs")
    cols = ["timestamp", "request_type", "name", "response_time_ms", "success", "requirement"]
    df = read_samples(path, cols).to_pandas()
    if os.path.exists(os.path.join(run_dir, rundir.RUN)):
        w = run_window(read_run(run_dir))
        df = df[(df["timestamp"] >= w.start) & (df["timestamp"] <= w.end)]
    df = df.fillna({"request_type": "", "name": "", "requirement": ""})
    parts: dict[Key, list[tuple[np.ndarray, int, int]]] = {}
    for (label, rtype, name), g in df.groupby(["requirement", "request_type", "name"], sort=True, observed=True):
        times = g["response_time_ms"].to_numpy(dtype=np.float64)
        piece = (times[~np.isnan(times)], len(g), int((~g["success"].fillna(False).astype(bool)).sum()))
        for key in scope_keys(str(label), rtype, name):
            parts.setdefault(key, []).append(piece)
    groups = {
        k: Group(np.sort(np.concatenate([p[0] for p in v])), sum(p[1] for p in v), sum(p[2] for p in v))
        for k, v in parts.items()
    }
    return RunSamples(os.path.basename(os.path.normpath(run_dir)), run_dir, groups)

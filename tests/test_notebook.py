"""The notebook API on a real run: ``loadgate.open_run`` and ``loadgate.open_history``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loadgate
from conftest import load, run_cli
from loadgate.errors import ConfigError


def test_open_run_and_open_history_after_a_real_run(e2e_run):
    res, run_dir = e2e_run("--requirement", "REQ-T-PASS")
    assert res.code == 0, res.stderr
    run = loadgate.open_run(run_dir)
    assert len(run.samples) == run.run["samples"] == load(run_dir, "run.json")["samples"] > 0
    for column in ("request_type", "name", "requirement", "worker"):
        assert isinstance(run.samples[column].dtype, pd.CategoricalDtype), column
    assert run.samples["response_time_ms"].dtype == np.float64
    assert run.verdict["verdict"] == "pass" and run.summary["schema"] == "loadgate.summary/1"
    judged = run.in_window()
    assert len(judged) == run.summary["overall"]["requests"]
    assert np.percentile(judged["response_time_ms"], 95) == run.summary["overall"]["response_time_ms"]["p95"]
    assert repr(run) == f"Run({str(run_dir)!r}, verdict='pass')"

    assert run_cli("gate", str(run_dir), "--thresholds", str(run_dir.parent.parent / "nowhere")).code == 2
    assert run_cli("gate", str(run_dir)).code == 0  # a re-evaluation: a second record of the same run
    history = loadgate.open_history(run_dir.parent)
    assert len(history) == 1
    row = history.iloc[0]
    assert (row["run_id"], row["requirement"], row["kind"], row["verdict"]) == (
        run_dir.name,
        "REQ-T-PASS",
        "gate",
        "pass",
    )
    assert row["p95"] == run.summary["requirements"]["REQ-T-PASS"]["response_time_ms"]["p95"]
    assert row["requests"] == run.summary["requirements"]["REQ-T-PASS"]["requests"]
    assert row["started"] == pd.Timestamp(run.run["start"], unit="s", tz="UTC")
    every = loadgate.open_history(run_dir.parent, all_records=True)
    assert list(every["kind"]) == ["run", "gate"]


def test_open_run_and_open_history_refuse_what_is_not_theirs(tmp_path):
    with pytest.raises(ConfigError, match=r"no such run directory; pass a folder written by 'loadgate run'"):
        loadgate.open_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no run.json or samples.parquet; pass a folder written by 'loadgate run'"):
        loadgate.open_run(tmp_path)
    with pytest.raises(ConfigError, match=r"history.sqlite: no history yet"):
        loadgate.open_history(tmp_path)

"""loadgate: a load-testing quality gate built on Locust.

Stages, each leaving a file in the run directory::

    run      Locust headless + recorder plugin  -> samples.parquet, run.json
    analyze  numpy/pandas                        -> summary.json
    gate     thresholds x summary                -> verdict.json, junit.xml, summary.md
    report   Jinja2                              -> report.html

For notebooks, :func:`open_run` and :func:`open_history`. ``import loadgate`` itself stays light:
they import their stage (and pandas) when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadgate._version import __version__

if TYPE_CHECKING:
    import os

    import pandas as pd

    from loadgate.data.notebook import Run

__all__ = ["__version__", "open_history", "open_run"]


def open_run(run_dir: "str | os.PathLike[str]") -> "Run":
    """A run directory: ``.samples`` (pandas, categorical strings), ``.run``, ``.summary``, ``.verdict``.

    ``.in_window()`` gives the samples the gate judged. Raises ``loadgate.errors.ConfigError`` when
    ``run_dir`` is not a run directory.
    """
    from loadgate.data.notebook import open_run as _open_run

    return _open_run(run_dir)


def open_history(out_dir: "str | os.PathLike[str]" = "reports", *, all_records: bool = False) -> "pd.DataFrame":
    """The runs recorded in ``OUT_DIR/history.sqlite``, one row per run and requirement, with their metrics.

    A run re-evaluated by ``loadgate gate`` appears once, with its latest verdict (every record with
    ``all_records=True``). Raises ``loadgate.errors.ConfigError`` when there is no history there.
    """
    from loadgate.history.frame import open_history as _open_history

    return _open_history(out_dir, all_records=all_records)

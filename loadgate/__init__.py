"""loadgate: a load-testing quality gate built on Locust.

Stages, each leaving a file in the run directory::

    run      Locust headless + recorder plugin  -> samples.parquet, run.json
    analyze  numpy/pandas                        -> summary.json
    gate     thresholds x summary                -> verdict.json, junit.xml, summary.md
    report   Jinja2                              -> report.html
"""
from __future__ import annotations

__version__ = "0.1.0"

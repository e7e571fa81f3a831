"""Samples -> ``summary.json`` (schema ``loadgate.summary/1``): exact percentiles, error rates, throughput.

:func:`summarize` is the one entry point, whatever holds the samples (a Parquet file, the recorder's
Arrow stream, Locust's CSV log, a table in memory): each becomes a
:class:`~loadgate.data.sample_source.SampleSource` of row groups, and one engine
(:mod:`loadgate.analysis.stream`) streams over them in bounded memory, its percentiles numpy's default
``linear`` method bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from loadgate.analysis.stream import summarize_source
from loadgate.analysis.summary_doc import DEFAULT_PERCENTILES, SUMMARY_SCHEMA_ID, checked_percentiles
from loadgate.analysis.window import Window
from loadgate.data.open_samples import open_samples
from loadgate.data.sample_source import SampleSource

__all__ = ["COLUMNS", "DEFAULT_PERCENTILES", "SUMMARY_SCHEMA_ID", "checked_percentiles", "summarize"]

# What summarize reads of the samples.
COLUMNS = ("timestamp", "request_type", "name", "response_time_ms", "success", "requirement", "users")
_CHUNK_ROWS = 1 << 20  # rows of a batch of samples held in memory: bounds the temporary arrays


def summarize(
    samples: SampleSource | Any,
    window: Window | None = None,
    *,
    requirements: Sequence[str] | None = None,
    percentiles: Iterable[float] = DEFAULT_PERCENTILES,
    series: bool = True,
) -> dict[str, Any]:
    """The summary of the samples in ``window`` (default: first to last timestamp).

    ``samples``: a SampleSource, a pyarrow Table, a pandas DataFrame, or a samples file's path.
    ``requirements`` limits the requirements section to those IDs, each present even without samples.
    Rows with a null/NaN response time count as requests but not in the response-time statistics;
    a null ``success`` counts as a failure.
    """
    return summarize_source(
        open_samples(samples, COLUMNS, batch_rows=_CHUNK_ROWS),
        window,
        requirements=requirements,
        percentiles=percentiles,
        series=series,
    )

"""An importer's batches streamed into a new run directory: ``samples.parquet`` and ``run.json``.

The directory is written under a hidden temporary name in ``--out`` and renamed into place only once
both files are complete, so a bad line, a full disk or a signal leaves no run directory behind.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loadgate.data import rundir
from loadgate.data.imports.columns import IMPORT_SCHEMA, TAG_COLUMNS
from loadgate.data.samples import _PARQUET_OPTIONS, ROW_GROUP_ROWS
from loadgate.errors import ConfigError

_DICTIONARY: list[str] = list(_PARQUET_OPTIONS["use_dictionary"])  # type: ignore[call-overload]
_OPTIONS = {**_PARQUET_OPTIONS, "use_dictionary": [*_DICTIONARY, *TAG_COLUMNS]}  # loadgate run's, and the tags


class Reader(Protocol):
    tool: str
    path: str

    def batches(self) -> Iterable[pa.RecordBatch]: ...


@dataclass
class Tally:
    """What the writer saw of the samples: counts, time span, users, requirements."""

    rows: int = 0
    first: float = math.inf
    last_end: float = -math.inf
    users: int | None = None
    requirements: dict[str, int] = field(default_factory=dict)

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        start = batch.column("timestamp")
        ends = pc.add(start, pc.divide(pc.fill_null(batch.column("response_time_ms"), 0.0), 1000.0))
        lo, hi = pc.min(start).as_py(), pc.max(ends).as_py()
        if lo is not None:
            self.first, self.last_end = min(self.first, lo), max(self.last_end, hi)
        most = pc.max(batch.column("users")).as_py()
        if most is not None:
            self.users = max(self.users or 0, int(most))
        counts = pc.value_counts(pc.fill_null(batch.column("requirement"), ""))
        for item in counts.to_pylist():
            for req in str(item["values"]).split(","):
                if req.strip():
                    self.requirements[req.strip()] = self.requirements.get(req.strip(), 0) + int(item["counts"])


@dataclass(frozen=True)
class Window:
    warmup: float = 0.0
    duration: float | None = None


def write_run(
    reader: Reader,
    out: str,
    source: dict[str, Any],
    window: Window,
    *,
    requirements: Sequence[str] = (),
    meta: dict[str, Any] | None = None,
) -> tuple[str, Tally]:
    """Import ``reader``'s samples into a new run directory under ``out``; return its path and the tally.

    ``requirements``: the run's requirements (default: every one the samples name); ``meta``: more
    keys for run.json (the command line, the thresholds' path)."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"--out {out}: cannot create it ({e.strerror}); choose a writable folder with --out DIR"
        ) from None
    tmp = os.path.join(out, f".import-{os.getpid()}-{dt.datetime.now().strftime('%H%M%S%f')}.tmp")
    os.mkdir(tmp)
    try:
        tally = _write_samples(reader, os.path.join(tmp, rundir.SAMPLES))
        if not tally.rows:
            raise ConfigError(
                f"{reader.path}: no HTTP requests in the file ({reader.tool}); nothing to gate — "
                "check that the test made requests and that the file is its results"
            )
        reqs = list(dict.fromkeys(requirements)) or sorted(tally.requirements)
        source = {**source, "lines": getattr(reader, "lines", None)}
        run = run_doc(tally, source, window, reqs, meta or {})
        rundir.write_json(os.path.join(tmp, rundir.RUN), run)
        final = _place(tmp, out, run["start"], reqs[0] if reqs else source["tool"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, tally


def _write_samples(reader: Reader, path: str) -> Tally:
    tally = Tally()
    with pq.ParquetWriter(path, IMPORT_SCHEMA, **_OPTIONS) as writer:
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in reader.batches():
            tally.add(batch)
            pending.append(_coded(batch))
            held += batch.num_rows
            while held >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending)
                _write_group(writer, table.slice(0, ROW_GROUP_ROWS))
                rest = table.slice(ROW_GROUP_ROWS)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            _write_group(writer, pa.Table.from_batches(pending))
    return tally


def _coded(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its string columns dictionary-encoded: a row group's rows wait as codes, not strings
    (a handful of names, groups and requirements repeated by the million)."""
    arrays = [pc.dictionary_encode(a) if pa.types.is_string(a.type) else a for a in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _write_group(writer: pq.ParquetWriter, table: pa.Table) -> None:
    """One row group in timestamp order, as ``loadgate run`` writes them (the strings decoded once, in order)."""
    order = pc.sort_indices(table, [("timestamp", "ascending")])
    try:
        ordered = table.take(order).cast(IMPORT_SCHEMA)
    except pa.ArrowInvalid:  # dictionaries Arrow cannot unify: decode first
        ordered = table.cast(IMPORT_SCHEMA).take(order)
    writer.write_table(ordered, row_group_size=ROW_GROUP_ROWS)


def run_doc(
    tally: Tally, source: dict[str, Any], window: Window, reqs: list[str], meta: dict[str, Any]
) -> dict[str, Any]:
    """run.json of an imported run: the samples' span cut by the window, and where they came from."""
    start, end = tally.first, tally.last_end
    if window.warmup and start + window.warmup >= end:
        raise ConfigError(
            f"--warmup {window.warmup:g}s is as long as the imported run ({end - start:.1f} s) or "
            "longer: nothing would be left to gate; give a shorter --warmup"
        )
    if window.duration is not None:
        end = min(end, start + window.warmup + window.duration)
    return {
        "schema": "loadgate.run/1",
        "requirements": reqs,
        "users": tally.users,
        "users_reached": tally.users,
        "spawn_rate": None,
        "duration": window.duration,
        "warmup": window.warmup,
        "host": None,
        "workers": None,
        "notes": [],
        "start": start,
        "ramp_up_done": None,
        "end": end,
        "samples": tally.rows,
        "stop_reason": f"imported from {source['tool']}",
        "requirement_samples": dict(sorted(tally.requirements.items())),
        "versions": rundir.versions(),
        "cwd": os.getcwd(),
        "source": source,
        **meta,
    }


def _place(tmp: str, out: str, start: float, first: str) -> str:
    """Rename the finished directory to ``<out>/<UTC start>-<first requirement>`` (``-2``… when taken)."""
    stamp = dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in first) or "import"
    base = os.path.join(out, f"{stamp}-{safe}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    os.rename(tmp, path)
    return path

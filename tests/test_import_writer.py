"""The import writer: batches over several row groups come out whole, each group in time order, and a
reader that fails midway leaves no run directory (nor its temporary one)."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loadgate.data.imports.writer as writer
from loadgate.data.imports.columns import IMPORT_SCHEMA, import_batch
from loadgate.errors import ConfigError


def _batches(count: int, rows: int) -> list[pa.RecordBatch]:
    rnd = random.Random(7)
    out = []
    for b in range(count):
        out.append(
            import_batch(
                {
                    "timestamp": pa.array([1_700_000_000 + rnd.random() * 100 for _ in range(rows)]),
                    "name": pa.array([f"GET /n{rnd.randint(0, 5 + b)}" for _ in range(rows)]),
                    "request_type": pa.array(["GET"] * rows),
                    "response_time_ms": pa.array([rnd.random() for _ in range(rows)]),
                    "success": pa.array([True] * rows),
                    "requirement": pa.array([f"REQ-{b % 3}"] * rows),
                    "group": pa.array([None if b % 2 else "::g"] * rows, pa.string()),
                    "users": pa.array([b] * rows, pa.int32()),
                },
                rows,
            )
        )
    return out


class Reader:
    tool, path = "test", "test.json"

    def __init__(self, batches, fail_after: int | None = None):
        self._batches, self.fail_after = batches, fail_after

    def batches(self):
        for i, b in enumerate(self._batches):
            if i == self.fail_after:
                raise ConfigError("test.json:99: broken")
            yield b


def test_row_groups_hold_every_row_in_time_order(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    batches = _batches(7, 700)
    run_dir, tally = writer.write_run(Reader(batches), str(tmp_path), {"tool": "test"}, writer.Window())
    f = pq.ParquetFile(f"{run_dir}/samples.parquet")
    assert f.metadata.num_row_groups == 5 and f.schema_arrow.remove_metadata() == IMPORT_SCHEMA.remove_metadata()
    for i in range(f.metadata.num_row_groups):
        ts = f.read_row_group(i, columns=["timestamp"]).column(0).to_pylist()
        assert ts == sorted(ts)
    key = lambda r: tuple(r[c] for c in IMPORT_SCHEMA.names)  # noqa: E731
    assert sorted(map(key, f.read().to_pylist())) == sorted(map(key, pa.Table.from_batches(batches).to_pylist()))
    assert tally.rows == 4900 and tally.users == 6
    assert tally.requirements == {"REQ-0": 2100, "REQ-1": 1400, "REQ-2": 1400}


def test_a_reader_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "ROW_GROUP_ROWS", 1000)
    with pytest.raises(ConfigError, match="test.json:99"):
        writer.write_run(Reader(_batches(7, 700), fail_after=4), str(tmp_path), {"tool": "test"}, writer.Window())
    assert list(tmp_path.iterdir()) == []

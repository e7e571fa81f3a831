"""JMeter's XML results (JTL with ``jmeter.save.saveservice.output_format=xml``) as loadgate samples.

Each top-level ``<httpSample>`` or ``<sample>`` of ``<testResults>`` is one sample (sub-results, the
embedded resources of a page, are inside their parent and not counted again); its attributes are
JMeter's short names: ``ts`` start (epoch ms), ``t`` elapsed, ``lb`` label, ``rc`` code, ``rm`` message,
``s`` success, ``tn`` thread, ``by`` bytes, ``na`` all threads, ``hn`` host; the failure message is the
first ``<assertionResult>``'s ``<failureMessage>``. Read by a streaming parser, 64k samples a batch:
memory stays with a batch (slower than the CSV reader, which Arrow parses: prefer CSV for big files).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loadgate.data.imports.columns import import_batch
from loadgate.data.imports.lines import open_input
from loadgate.data.imports.requirement_map import RequirementMap
from loadgate.errors import ConfigError

SAMPLES = ("httpSample", "sample")
BATCH = 1 << 16
FIELDS = ("ts", "t", "lb", "rc", "rm", "s", "tn", "by", "na", "hn", "failure")


class JtlXmlReader:
    """Batches of samples from an XML JTL."""

    tool = "JMeter"

    def __init__(self, path: str, requirements: RequirementMap) -> None:
        self.path, self.requirements = path, requirements
        self.lines = 0
        self.settings: dict[str, str] = {}

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows: dict[str, list[Any]] = {f: [] for f in FIELDS}
        depth, root = 0, None
        top: ET.Element | None = None
        with open_input(self.path) as stream:
            try:
                for event, element in ET.iterparse(stream, events=("start", "end")):
                    if event == "start":
                        depth += 1
                        if root is None:
                            root, top = element.tag, element
                            if root != "testResults":
                                raise ConfigError(
                                    f"{self.path}:1: <{root}> is not a JMeter result file "
                                    "(<testResults>); give the JTL the test wrote"
                                )
                        continue
                    depth -= 1
                    if depth != 1:
                        continue
                    if element.tag in SAMPLES:
                        self._add(rows, element)
                    if top is not None:
                        top.clear()  # the root keeps no sample read: memory stays with a batch
                    if len(rows["ts"]) >= BATCH:
                        yield self._batch(rows)
                        rows = {f: [] for f in FIELDS}
            except ET.ParseError as e:
                line = e.position[0]
                raise ConfigError(
                    f"{self.path}:{line}: not well-formed XML ({e}); the file is cut short or damaged"
                    " (JMeter stopped while writing it?)"
                ) from None
        if rows["ts"]:
            yield self._batch(rows)

    def _add(self, rows: dict[str, list[Any]], element: ET.Element) -> None:
        get = element.attrib.get
        for f in FIELDS[:-1]:
            rows[f].append(get(f))
        failure = element.find("assertionResult/failureMessage")
        rows["failure"].append(failure.text if failure is not None else None)
        self.lines += 1

    def _batch(self, rows: dict[str, list[Any]]) -> pa.RecordBatch:
        n = len(rows["ts"])
        text = {f: pa.array(rows[f], pa.string()) for f in FIELDS}
        try:
            start = pc.divide(pc.cast(pc.cast(text["ts"], pa.int64()), pa.float64()), 1000.0)
            elapsed = pc.cast(text["t"], pa.float64())
        except pa.ArrowInvalid as e:
            raise ConfigError(
                f"{self.path}: a sample's ts or t is not a number ({str(e).splitlines()[0]}); "
                "expected JMeter's epoch milliseconds and elapsed ms"
            ) from None
        code = pc.cast(
            pc.if_else(
                pc.match_substring_regex(pc.fill_null(text["rc"], ""), r"^\d{1,3}$"),
                text["rc"],
                pa.scalar(None, pa.string()),
            ),
            pa.int32(),
        )
        success = pc.equal(pc.fill_null(text["s"], "false"), "true")
        failure = pc.coalesce(
            pc.if_else(pc.equal(pc.fill_null(text["failure"], ""), ""), pa.scalar(None, pa.string()), text["failure"]),
            text["rm"],
            pa.scalar("failed"),
        )
        scenario = pc.replace_substring_regex(pc.fill_null(text["tn"], ""), r"\s+\d+-\d+$", "")
        columns = {
            "timestamp": start,
            "request_type": pa.repeat(pa.scalar("JMeter"), n),
            "name": text["lb"],
            "response_time_ms": elapsed,
            "status_code": code,
            "success": success,
            "exception": pc.if_else(success, pa.scalar(None, pa.string()), failure),
            "response_length": pc.cast(text["by"], pa.int64()),
            "users": pc.cast(text["na"], pa.int32()),
            "worker": text["hn"],
            "scenario": scenario,
        }
        empty = pa.repeat(pa.scalar(""), n)
        columns["requirement"] = self.requirements.apply(
            {"name": pc.fill_null(text["lb"], ""), "group": empty, "scenario": scenario}, None
        )
        return import_batch(columns, n)

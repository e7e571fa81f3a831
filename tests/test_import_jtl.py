"""JMeter's CSV results (JTL) imported as samples. JMeter itself cannot run here, so the files are written
to its documented CSV format (JMeter 5.x's CSVSaveService: the default columns and their order, the
jmeter.save.saveservice.* settings, minimal quoting): the default header, a custom subset with the header
on, the header off with the settings given to import, quoted labels with commas and failure messages
with newlines, epoch-millisecond and formatted timestamps, and the errors with their line numbers."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pytest

from loadgate.data.imports.jtl import REQUEST_TYPE, JtlReader
from loadgate.data.imports.jtl_format import DEFAULT_HEADER, columns_from_settings, parse_settings
from loadgate.data.imports.requirement_map import by_tag, load_map
from loadgate.errors import ConfigError
from tests.conftest import load, run_cli, run_dir_of

T0 = 1_765_000_000_000  # epoch ms
ASSERTION = "Test failed: code expected to equal /\n\n****** received  : [[[500]]]\n\n****** comparison: [[[200]]]"
ROWS = [  # (offset ms, elapsed, label, code, message, thread, success, failureMessage, bytes, allThreads)
    (0, 12, "Home", "200", "OK", "Browse 1-1", "true", "", 1200, 2),
    (5, 40, "Search, sorted", "200", "OK", "Browse 1-2", "true", "", 5400, 2),
    (9, 7, "Login", "500", "Internal Server Error", "Buy 1-1", "false", ASSERTION, 120, 3),
    (
        30,
        1003,
        "Login",
        "Non HTTP response code: java.net.ConnectException",
        "Non HTTP response message: Connection refused",
        "Buy 1-1",
        "false",
        "",
        0,
        3,
    ),
    (1500, 15, 'Quote "this", please', "302", "Found", "Browse 1-2", "true", "", 300, 3),
]


def _record(row: tuple, columns: list[str], stamp=lambda ms: str(ms)) -> list[str]:
    off, elapsed, label, code, message, thread, ok, failure, size, users = row
    values = {
        "timeStamp": stamp(T0 + off),
        "elapsed": str(elapsed),
        "label": label,
        "responseCode": code,
        "responseMessage": message,
        "threadName": thread,
        "dataType": "text",
        "success": ok,
        "failureMessage": failure,
        "bytes": str(size),
        "sentBytes": "140",
        "grpThreads": "1",
        "allThreads": str(users),
        "URL": f"http://127.0.0.1:8080/{label}",
        "Filename": "",
        "Latency": "3",
        "Encoding": "UTF-8",
        "SampleCount": "1",
        "ErrorCount": "0" if ok == "true" else "1",
        "Hostname": "gen-1",
        "IdleTime": "0",
        "Connect": "1",
    }
    return [values[c] for c in columns]


def write_jtl(
    path: Path, columns: list[str], header: bool = True, stamp=lambda ms: str(ms), delimiter: str = ",", rows=ROWS
) -> Path:
    """A JTL as JMeter's CSVSaveService writes it: quotes only around values holding the delimiter, a quote
    or a line break (doubled quotes inside); lines end with the platform's separator (\\n here)."""
    buf = io.StringIO()
    out = csv.writer(buf, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    if header:
        out.writerow(columns)
    for row in rows:
        out.writerow(_record(row, columns, stamp))
    path.write_text(buf.getvalue())
    return path


def read(path: Path, settings: dict | None = None, requirements=None, utc_offset: str = "+00:00") -> list[dict]:
    reader = JtlReader(str(path), requirements or by_tag(""), settings, utc_offset)
    return pa.Table.from_batches(list(reader.batches())).to_pylist()


def _check(rows: list[dict], columns: list[str]) -> None:
    assert len(rows) == len(ROWS)
    for got, (off, elapsed, label, code, message, thread, ok, failure, size, users) in zip(rows, ROWS):
        assert got["name"] == label and got["request_type"] == REQUEST_TYPE
        assert got["response_time_ms"] == elapsed
        assert got["timestamp"] == pytest.approx((T0 + off) / 1000, abs=1e-6)
        if "success" in columns:
            assert got["success"] is (ok == "true")
        if "responseCode" in columns:
            assert got["status_code"] == (int(code) if code.isdigit() else None)
        if not got["success"] and "failureMessage" in columns:
            assert got["exception"] == (failure or message)
        if got["success"]:
            assert got["exception"] is None
        if "threadName" in columns:
            assert got["scenario"] == thread.rsplit(" ", 1)[0]  # the thread group
        if "allThreads" in columns:
            assert got["users"] == users
        if "bytes" in columns:
            assert got["response_length"] == size


def test_default_header_quoted_labels_and_failure_messages(tmp_path):
    columns = list(DEFAULT_HEADER)
    assert columns == (
        "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,"
        "failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect"
    ).split(",")
    _check(read(write_jtl(tmp_path / "default.jtl", columns)), columns)


def test_custom_subset_with_header_and_gzip(tmp_path):
    columns = ["label", "timeStamp", "success", "elapsed", "responseCode", "Hostname"]  # any order, by name
    path = write_jtl(tmp_path / "subset.jtl", columns)
    rows = read(path)
    _check(rows, columns)
    assert {r["worker"] for r in rows} == {"gen-1"}
    packed = tmp_path / "subset.jtl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert read(packed) == rows


def test_header_off_with_the_settings_the_test_ran_with(tmp_path):
    pairs = [
        "jmeter.save.saveservice.print_field_names=false",
        "thread_counts=false",
        "url=false",
        "jmeter.save.saveservice.hostname=true",
        "default_delimiter=;",
    ]
    settings = parse_settings(pairs)
    columns = columns_from_settings(settings)
    assert columns == [
        "timeStamp",
        "elapsed",
        "label",
        "responseCode",
        "responseMessage",
        "threadName",
        "dataType",
        "success",
        "failureMessage",
        "bytes",
        "sentBytes",
        "Latency",
        "Hostname",
        "IdleTime",
        "Connect",
    ]
    path = write_jtl(tmp_path / "noheader.jtl", columns, header=False, delimiter=";")
    _check(read(path, settings), columns)
    props = tmp_path / "user.properties"
    props.write_text(
        "# from the test's user.properties\n"
        + "\n".join(p if p.startswith("jmeter.") else "jmeter.save.saveservice." + p for p in pairs)
        + "\nother.setting=1\n"
    )
    assert parse_settings([], str(props)) == settings


def test_header_off_without_its_settings_says_what_to_give(tmp_path):
    columns = ["timeStamp", "elapsed", "label", "success"]
    path = write_jtl(tmp_path / "bare.jtl", columns, header=False)
    with pytest.raises(ConfigError, match=r"bare.jtl:1: the first line has 4 fields.*write 17"):
        read(path)


@pytest.mark.parametrize(
    "pattern,stamp",
    [
        (
            "yyyy/MM/dd HH:mm:ss.SSS",
            lambda ms: (
                dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y/%m/%d %H:%M:%S.")
                + f"{ms % 1000:03d}"
            ),
        ),
        (
            "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
            lambda ms: (
                dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{ms % 1000:03d}+02:00"
            ),
        ),
        (
            "MM/dd/yy hh:mm:ss.SSS a Z",
            lambda ms: (
                dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=-5))).strftime("%m/%d/%y %I:%M:%S.")
                + f"{ms % 1000:03d} "
                + dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=-5))).strftime("%p -0500")
            ),
        ),
        (
            None,
            lambda ms: (
                dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.")
                + f"{ms % 1000:03d}"
            ),
        ),  # no format given: an ISO-like date is recognised
    ],
)
def test_formatted_timestamps(tmp_path, pattern, stamp):
    columns = ["timeStamp", "elapsed", "label", "success"]
    path = write_jtl(tmp_path / "dates.jtl", columns, stamp=stamp)
    _check(read(path, {"timestamp_format": pattern} if pattern else None), columns)


def test_timestamps_without_a_zone_read_at_the_offset_given(tmp_path):
    columns = ["timeStamp", "elapsed", "label", "success"]
    here = dt.timezone(dt.timedelta(hours=1))
    path = write_jtl(
        tmp_path / "local.jtl",
        columns,
        stamp=lambda ms: dt.datetime.fromtimestamp(ms / 1000, here).strftime("%Y/%m/%d %H:%M:%S.") + f"{ms % 1000:03d}",
    )
    _check(read(path, {"timestamp_format": "yyyy/MM/dd HH:mm:ss.SSS"}, utc_offset="+01:00"), columns)


def _bad(tmp_path: Path, text: str, settings=None) -> str:
    path = tmp_path / "bad.jtl"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read(path, settings)
    return str(caught.value)


def test_errors_name_the_line(tmp_path):
    good = write_jtl(tmp_path / "g.jtl", list(DEFAULT_HEADER)).read_text()
    # the failure message spans lines 4-8: the record after it starts on line 9
    lines = good.splitlines(keepends=True)
    assert _bad(tmp_path, "".join(lines)[:-30]).startswith(
        f"{tmp_path}/bad.jtl:{len(lines)}: the last line is cut short"
    )
    no_elapsed = write_jtl(tmp_path / "n.jtl", ["timeStamp", "label", "success"]).read_text()
    assert _bad(tmp_path, no_elapsed).startswith(f"{tmp_path}/bad.jtl:1: no 'elapsed' column")
    broken = good.replace("\n1765000000030,1003,", "\n1765000000030,12x,")
    message = _bad(tmp_path, broken)
    assert ":9: elapsed '12x' is not a number" in message, message
    mixed = (
        "timeStamp,elapsed,label,success\n2026/01/15 12:00:00.000 +0100,5,a,true\n2026/01/15 12:00:01.000,5,a,true\n"
    )
    message = _bad(tmp_path, mixed)
    assert ":3: mixed time zones" in message, message


def test_gated_jtl_run_with_a_requirement_map(tmp_path):
    path = write_jtl(tmp_path / "results.jtl", list(DEFAULT_HEADER))
    (tmp_path / "map.yaml").write_text(
        'requirements:\n  - requirement: REQ-LOGIN\n    name: "Login"\n'
        '  - requirement: REQ-BROWSE\n    scenario: "Browse"\n'
    )
    th = tmp_path / "th"
    th.mkdir()
    for req in ("REQ-LOGIN", "REQ-BROWSE"):
        (th / f"{req}.yaml").write_text(f'requirement: {req}\nthresholds:\n  - metric: error_rate\n    alert: ">10%"\n')
    rows = read(path, requirements=load_map(str(tmp_path / "map.yaml")))
    assert [r["requirement"] for r in rows] == ["REQ-BROWSE", "REQ-BROWSE", "REQ-LOGIN", "REQ-LOGIN", "REQ-BROWSE"]
    res = run_cli(
        "import",
        "jtl",
        str(path),
        "--map",
        str(tmp_path / "map.yaml"),
        "--out",
        str(tmp_path / "out"),
        "--thresholds",
        str(th),
        "--tool-version",
        "5.6.3",
    )
    assert res.code == 1, res.stdout + res.stderr  # both Login samples failed
    run_dir = run_dir_of(tmp_path / "out")
    verdict, run = load(run_dir, "verdict.json"), load(run_dir, "run.json")
    assert verdict["verdict"] == "fail"
    assert {r["requirement"]: r["status"] for r in verdict["thresholds"]} == {"REQ-LOGIN": "fail", "REQ-BROWSE": "pass"}
    assert run["source"]["tool"] == "JMeter" and run["source"]["lines"] == len(ROWS)
    assert "JMeter 5.6.3" in (run_dir / "report.html").read_text()
    assert run_cli("verify", str(run_dir)).code == 0


XML = """<?xml version="1.0" encoding="UTF-8"?>
<testResults version="1.2">
<httpSample t="12" it="0" lt="3" ct="1" ts="1765000000000" s="true" lb="Home" rc="200" rm="OK" tn="Browse 1-1" dt="text" by="1200" sby="140" ng="1" na="2" hn="gen-1">
  <httpSample t="4" ts="1765000000002" s="true" lb="/style.css" rc="200" rm="OK" tn="Browse 1-1" by="300" na="2"/>
</httpSample>
<httpSample t="7" lt="3" ts="1765000000009" s="false" lb="Login, twice" rc="500" rm="Internal Server Error" tn="Buy 1-1" by="120" na="3">
  <assertionResult><name>Response Assertion</name><failure>true</failure><error>false</error>
    <failureMessage>Test failed: code expected to equal /200/</failureMessage></assertionResult>
</httpSample>
<sample t="1003" ts="1765000000030" s="false" lb="Login, twice" rc="Non HTTP response code: java.net.ConnectException" rm="Non HTTP response message: Connection refused" tn="Buy 1-1" by="0" na="3"/>
</testResults>
"""


def test_xml_jtl_top_level_samples_with_assertion_failures(tmp_path):
    from loadgate.data.imports.jtl import jtl_reader

    path = tmp_path / "results.xml.jtl"
    path.write_text(XML)
    rows = pa.Table.from_batches(list(jtl_reader(str(path), by_tag("")).batches())).to_pylist()
    assert [
        (
            r["name"],
            r["response_time_ms"],
            r["success"],
            r["status_code"],
            r["exception"],
            r["scenario"],
            r["users"],
            r["response_length"],
        )
        for r in rows
    ] == [
        ("Home", 12.0, True, 200, None, "Browse", 2, 1200),  # its sub-result (the stylesheet) is not a sample
        ("Login, twice", 7.0, False, 500, "Test failed: code expected to equal /200/", "Buy", 3, 120),
        ("Login, twice", 1003.0, False, None, "Non HTTP response message: Connection refused", "Buy", 3, 0),
    ]
    assert [r["timestamp"] for r in rows] == [1765000000.0, 1765000000.009, 1765000000.03]
    cut = tmp_path / "cut.jtl"
    cut.write_text(XML[:-60])
    with pytest.raises(ConfigError, match=r"cut.jtl:\d+: not well-formed XML"):
        list(jtl_reader(str(cut), by_tag("")).batches())

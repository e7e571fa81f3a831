"""k6's JSON output imported as samples: the reader against a plain-Python reading of a real k6 file
(tests/data/k6/mixed.json: k6 v1.1.0 running mixed.js against a local server), the requirement map,
gzip, the errors and their line numbers, and imported runs gated, re-gated and verified through the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadgate.data.imports.k6_json import K6Reader
from loadgate.data.imports.requirement_map import by_tag, load_map
from loadgate.errors import ConfigError
from tests.conftest import load, run_cli, run_dir_of

DATA = Path(__file__).parent / "data" / "k6"
MIXED = DATA / "mixed.json"


def _thresholds(folder: Path, *reqs: str, alert: str = ">50%") -> Path:
    folder.mkdir(exist_ok=True)
    for req in reqs:
        (folder / f"{req}.yaml").write_text(
            f"requirement: {req}\nthresholds:\n  - metric: error_rate\n"
            f'    alert: "{alert}"\n  - metric: p95\n    alert: ">2s"\n'
        )
    return folder


def _oracle(path: Path) -> list[dict]:
    """Each http_req_duration point read with json, as the reader must turn it into a sample."""
    rows, users = [], None
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if doc["type"] != "Point":
            continue
        if doc["metric"] == "vus":
            users = int(doc["data"]["value"])
        if doc["metric"] != "http_req_duration":
            continue
        tags, value = doc["data"]["tags"], doc["data"]["value"]
        ended = dt.datetime.fromisoformat(doc["data"]["time"][:26] + "+00:00")  # k6 writes UTC here (Z)
        status = int(tags["status"])
        ok = tags["expected_response"] == "true"
        rows.append(
            {
                "end": ended.timestamp(),
                "name": tags["name"],
                "request_type": tags["method"],
                "response_time_ms": value,
                "status_code": status,
                "success": ok,
                "exception": None
                if ok
                else tags.get("error") or (f"HTTP {status}" if status else f"k6 error_code {tags['error_code']}"),
                "requirement": tags.get("requirement", ""),
                "group": tags["group"],
                "scenario": tags["scenario"],
                "users": users,
            }
        )
    return rows


def _read(path: Path, requirements=None) -> pa.Table:
    reader = K6Reader(str(path), requirements or by_tag("requirement"))
    return pa.Table.from_batches(list(reader.batches()))


def test_every_duration_point_becomes_one_sample_with_its_tags():
    expected = _oracle(MIXED)
    table = _read(MIXED).to_pylist()
    assert len(table) == len(expected) == 52
    for got, want in zip(table, expected):
        for key in (
            "name",
            "request_type",
            "response_time_ms",
            "status_code",
            "success",
            "exception",
            "requirement",
            "group",
            "scenario",
            "users",
        ):
            assert got[key] == want[key], (key, got, want)
        # k6 stamps a request's points when it ended: the sample starts a response time earlier (µs: float seconds)
        assert got["timestamp"] == pytest.approx(want["end"] - want["response_time_ms"] / 1000, abs=2e-6)
    assert {r["group"] for r in table} == {"::catalogue", ""}
    assert {r["scenario"] for r in table} == {"browse", "checkout"}
    assert sum(not r["success"] for r in table) == 8


def test_gzip_reads_the_same(tmp_path):
    packed = tmp_path / "mixed.json.gz"
    packed.write_bytes(gzip.compress(MIXED.read_bytes()))
    assert _read(packed).equals(_read(MIXED))


def test_requirement_map_by_name_group_and_scenario(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "requirements:\n"
        '  - requirement: REQ-ITEM\n    name: "GET /items/*"\n'
        '  - requirement: REQ-CAT\n    group: "::catalogue"\n'
        '  - requirement: REQ-FAIL\n    scenario: checkout\n    name: "re:^(POST|GET closed)"\n'
        "default: REQ-REST\n"
    )
    rows = _read(MIXED, load_map(str(path))).to_pylist()
    for r in rows:
        want = (
            "REQ-ITEM"
            if r["name"].startswith("GET /items/")
            else "REQ-CAT"
            if r["group"] == "::catalogue"
            else "REQ-FAIL"
            if r["scenario"] == "checkout" and r["name"].startswith(("POST", "GET closed"))
            else "REQ-REST"
        )
        assert r["requirement"] == want, r
    assert {r["requirement"] for r in rows} == {"REQ-ITEM", "REQ-CAT", "REQ-FAIL", "REQ-REST"}


def test_requirement_map_errors_name_the_line(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("requirements:\n  - requirement: REQ-A\n    name: x\n  - requirement: REQ-B\n    label: y\n")
    with pytest.raises(ConfigError, match=r"map.yaml:4: unknown key\(s\) label"):
        load_map(str(path))


def _lines() -> list[str]:
    return MIXED.read_text().splitlines(keepends=True)


def _import(tmp_path: Path, file: Path, *args: str):
    out = tmp_path / "reports"
    res = run_cli(
        "import",
        "k6",
        str(file),
        "--out",
        str(out),
        "--thresholds",
        str(_thresholds(tmp_path / "th", "REQ-BROWSE", "REQ-CHECKOUT")),
        *args,
    )
    return res, out


def _left(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.mark.parametrize("case", ["truncated", "not k6", "json array", "garbage", "mixed zones"])
def test_bad_input_names_the_line_and_leaves_no_run_directory(tmp_path, case):
    lines = _lines()
    durations = [i for i, l in enumerate(lines) if '"http_req_duration","type":"Point"' in l]
    if case == "truncated":  # k6 killed mid-write: the last line is cut short
        text, line, what = "".join(lines)[:-40], len(lines), "the last line is cut short"
    elif case == "not k6":
        text, line, what = '{"level":"info","msg":"hello"}\n' + "".join(lines), 1, "not k6 JSON output"
    elif case == "json array":
        text, line, what = "[1, 2]\n", 1, "not k6 JSON output"
    elif case == "garbage":
        at = durations[10]
        text, line, what = "".join(lines[:at] + ["oops, not json\n"] + lines[at:]), at + 1, "not valid JSON"
    else:
        at = durations[20]
        doc = json.loads(lines[at])
        doc["data"]["time"] = doc["data"]["time"].rstrip("Z")
        text = "".join(lines[:at] + [json.dumps(doc) + "\n"] + lines[at + 1 :])
        line, what = at + 1, "mixed time zones"
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    res, out = _import(tmp_path, bad)
    assert res.code == 2, res.stderr
    assert f"bad.json:{line}: " in res.stderr and what in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert [n for n in _left(out) if not n.endswith(".sqlite")] == []


def test_imported_run_is_gated_regated_verified_and_names_its_source(tmp_path):
    named = tmp_path / "k6 <b>out.json"  # untrusted text: the report must show it escaped
    shutil.copy(MIXED, named)
    res, out = _import(tmp_path, named, "--tool-version", "v1.1.0")
    assert res.code == 1, res.stderr  # REQ-CHECKOUT: 8 of 12 failed, alert >50%
    run_dir = run_dir_of(out)
    run = load(run_dir, "run.json")
    assert run["source"]["tool"] == "k6" and run["source"]["version"] == "v1.1.0"
    assert run["source"]["sha256"] == hashlib.sha256(MIXED.read_bytes()).hexdigest()
    assert run["source"]["lines"] == len(_lines())
    assert run["requirements"] == ["REQ-BROWSE", "REQ-CHECKOUT"]
    assert load(run_dir, "verdict.json")["verdict"] == "fail"
    table = pq.read_table(run_dir / "samples.parquet")
    assert table.num_rows == 52 and {"group", "scenario"} <= set(table.column_names)
    report = (run_dir / "report.html").read_text()
    assert "k6 &lt;b&gt;out.json" in report and "<b>out" not in report
    assert run["source"]["sha256"] in report
    md = (run_dir / "summary.md").read_text()
    assert f"Samples imported from k6 v1.1.0\\: k6 \\<b\\>out.json, sha256 {run['source']['sha256']}." in md, md
    verify = run_cli("verify", str(run_dir))
    assert verify.code == 0, verify.stdout + verify.stderr
    again = run_cli("gate", str(run_dir))  # the thresholds recorded in run.json
    assert again.code == 1, again.stderr
    assert run_cli("verify", str(run_dir)).code == 0


def test_gate_from_in_one_step_and_a_requirement_without_samples_is_inconclusive(tmp_path):
    th = _thresholds(tmp_path / "th", "REQ-BROWSE", "REQ-EMPTY")
    out = tmp_path / "reports"
    res = run_cli(
        "gate", "--from", f"k6:{MIXED}", "--requirement", "REQ-BROWSE", "--out", str(out), "--thresholds", str(th)
    )
    assert res.code == 0, res.stderr
    run_dir = run_dir_of(out)
    summary = load(run_dir, "summary.json")
    # one --requirement: the requests no tag names (checkout's GET /items) serve it too
    rows = _oracle(MIXED)
    untagged = sum(r["requirement"] == "" for r in rows)
    assert untagged == 4
    assert summary["requirements"]["REQ-BROWSE"]["requests"] == sum(r["requirement"] == "REQ-BROWSE" for r in rows) + 4
    res = run_cli(
        "import",
        "k6",
        str(MIXED),
        "--requirement",
        "REQ-BROWSE",
        "--requirement",
        "REQ-EMPTY",
        "--out",
        str(tmp_path / "two"),
        "--thresholds",
        str(th),
    )
    assert res.code == 3, res.stdout + res.stderr
    verdict = load(run_dir_of(tmp_path / "two"), "verdict.json")
    assert verdict["verdict"] == "inconclusive"
    assert any("REQ-EMPTY" in r for r in verdict["reasons"]), verdict["reasons"]


def test_warmup_and_duration_cut_the_imported_timeline(tmp_path):
    rows = _read(MIXED).to_pylist()
    first = min(r["timestamp"] for r in rows)
    res, out = _import(tmp_path, MIXED, "--warmup", "500ms", "--duration", "1s")
    assert res.code in (0, 1), res.stderr
    run_dir = run_dir_of(out)
    run, summary = load(run_dir, "run.json"), load(run_dir, "summary.json")
    assert run["start"] == first and run["end"] == first + 1.5
    inside = [r for r in rows if first + 0.5 <= r["timestamp"] <= first + 1.5]
    assert 0 < len(inside) < len(rows)
    counted = sum(v["requests"] for v in summary["requirements"].values())
    assert counted == sum(1 for r in inside if r["requirement"])
    assert math.isclose(summary["window"]["seconds"], 1.0)


def test_warmup_longer_than_the_run_is_refused(tmp_path):
    res, out = _import(tmp_path, MIXED, "--warmup", "1h")
    assert res.code == 2 and "--warmup" in res.stderr, res.stderr
    assert [n for n in _left(out) if not n.endswith(".sqlite")] == []

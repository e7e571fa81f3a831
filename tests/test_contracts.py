"""The typed contracts between the stages: the run directory's documents match their declared shapes,
each is read and written through its one function, and statuses are an Enum that reads as its text."""

from __future__ import annotations

import json

import pytest

from conftest import load
from loadgate.analysis.summary_doc import RequestStats, Stats, SummaryDoc, read_summary, write_summary
from loadgate.data.recorder_report import RecorderReport, read_recorder_report, write_recorder_report
from loadgate.data.run_doc import RunDoc, read_run, write_run
from loadgate.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS, ConfigError
from loadgate.gate.status import Status, exit_code, worse
from loadgate.gate.verdict import ThresholdResult, Verdict
from loadgate.gate.verdict_doc import ThresholdDoc, VerdictDoc, read_verdict


def _declared(doc: dict, shape: type, where: str) -> None:
    """Every key of ``doc`` is declared by ``shape``, and every key it requires is there."""
    keys = shape.__required_keys__ | shape.__optional_keys__
    assert set(doc) <= keys, f"{where}: undeclared keys {sorted(set(doc) - keys)} (add them to {shape.__name__})"
    assert shape.__required_keys__ <= set(doc), f"{where}: missing {sorted(shape.__required_keys__ - set(doc))}"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real run (Locust against the embedded target on 127.0.0.1): its run directory."""
    from conftest import E2E, run_cli

    out = tmp_path_factory.mktemp("contracts") / "reports"
    res = run_cli(
        "run",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(out),
        "--requirement",
        "REQ-T-PASS",
    )
    assert res.code == 0, res.stderr
    return next(p for p in out.iterdir() if p.is_dir())


def test_a_real_run_directory_matches_the_declared_shapes(real_run):
    run, summary, verdict = load(real_run, "run.json"), load(real_run, "summary.json"), load(real_run, "verdict.json")
    _declared(run, RunDoc, "run.json")
    _declared(summary, SummaryDoc, "summary.json")
    for scope, stats in [("overall", summary["overall"]), *summary["requirements"].items()]:
        _declared(stats, Stats, f"summary.json {scope}")
    assert summary["requests"]
    for entry in summary["requests"]:
        _declared(entry, RequestStats, f"summary.json request {entry['name']}")
    _declared(verdict, VerdictDoc, "verdict.json")
    assert verdict["thresholds"]
    for t in verdict["thresholds"]:
        _declared(t, ThresholdDoc, f"verdict.json threshold {t['metric']}")
        assert t["status"] in {s.value for s in Status}
    # the readers give the files as they are
    assert read_run(str(real_run)) == run
    assert read_summary(str(real_run)) == summary
    assert read_verdict(str(real_run)) == verdict


def test_the_writers_keep_the_bytes_of_what_they_read(real_run, tmp_path):
    for name, read, write in (("run.json", read_run, write_run), ("summary.json", read_summary, write_summary)):
        write(str(tmp_path), read(str(real_run)))
        assert (tmp_path / name).read_bytes() == (real_run / name).read_bytes(), name


def test_a_missing_or_damaged_document_names_the_file(tmp_path):
    for read, name in ((read_run, "run.json"), (read_summary, "summary.json"), (read_verdict, "verdict.json")):
        with pytest.raises(ConfigError, match=f"{name}: missing"):
            read(str(tmp_path))
        (tmp_path / name).write_text('{"schema": ')
        with pytest.raises(ConfigError, match=f"{name}:1: not valid JSON"):
            read(str(tmp_path))


def test_the_recorder_report_round_trips_and_reads_as_absent_when_missing_or_damaged(tmp_path):
    assert read_recorder_report(str(tmp_path)) is None
    report: RecorderReport = {
        "requirements": ["REQ-A"],
        "ramp_up_done": 12.5,
        "start": 10.0,
        "end": 40.0,
        "stop_reason": "stopped",
        "users_reached": 5,
        "samples_recorded": 300,
        "cpu": {"local": [[11.0, float("nan")]]},
        "write_error": None,
    }
    write_recorder_report(str(tmp_path), report)
    back = read_recorder_report(str(tmp_path))
    assert back is not None and back["end"] == 40.0 and back["users_reached"] == 5
    assert json.loads((tmp_path / "recorder.json").read_text().replace("NaN", "null"))["cpu"] == {
        "local": [[11.0, None]]
    }
    (tmp_path / "recorder.json").write_text('{"requirements": [')  # Locust killed while writing it
    assert read_recorder_report(str(tmp_path)) is None


def test_a_status_reads_and_writes_as_its_text():
    assert Status.FAIL == "fail" and f"{Status.WARN}" == "warn" and str(Status.PASS) == "pass"
    assert json.dumps({"status": Status.INCONCLUSIVE, Status.SKIPPED: 1}) == '{"status": "inconclusive", "skipped": 1}'
    assert {"fail": 1}[Status.FAIL] == 1 and Status("warn") is Status.WARN
    assert Status.FAIL.upper() == "FAIL"


def test_exit_codes_and_ranks_come_from_the_status():
    assert [exit_code(s) for s in ("pass", "warn", "fail", "inconclusive")] == [
        EXIT_PASS,
        EXIT_PASS,
        EXIT_FAIL,
        EXIT_INCONCLUSIVE,
    ]
    with pytest.raises(KeyError):
        exit_code(Status.SKIPPED)  # a threshold's status, never a verdict's
    assert worse("pass", "warn") is Status.WARN and worse("inconclusive", "warn") is Status.INCONCLUSIVE
    assert worse("fail", "inconclusive") is Status.FAIL and worse(Status.INCONCLUSIVE, "fail") is Status.FAIL


def test_a_verdict_given_statuses_as_text_holds_them_as_status():
    r = ThresholdResult("REQ-A", "p95", None, "<200ms", "<500ms", 612.0, "ms", 10, "fail", "crossed", "a.yaml:3")
    v = Verdict.of("fail", ("crossed",), (r,))
    assert r.status is Status.FAIL and v.verdict is Status.FAIL and v.exit_code == EXIT_FAIL
    assert Verdict("warn", 0, (), ()).verdict is Status.WARN
    with pytest.raises(ValueError, match="a fail verdict exits 1, not 0"):
        Verdict("fail", 0, (), ())
    doc = v.to_dict()
    assert json.loads(json.dumps(doc))["thresholds"][0]["status"] == "fail" and doc["exit_code"] == 1

"""Threshold files: parsing, units, line numbers and every error line, with hand-written answers."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgate.errors import ConfigError
from loadgate.gate.resources import ResourceSettings
from loadgate.gate.thresholds import (
    REQUIREMENT_RE,
    Condition,
    LoadDefaults,
    load_threshold_file,
    load_thresholds,
    parse_condition,
    required_percentiles,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(text: str, name: str = "t.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return name


def error_of(text: str) -> str:
    path = write(text)
    with pytest.raises(ConfigError) as exc:
        load_threshold_file(path)
    message = str(exc.value)
    assert "\n" not in message
    assert exc.value.exit_code == 2
    return message


def one(condition_lines: str, metric: str = "p95") -> str:
    """A minimal file with one threshold item; the item starts on line 3, its first key after metric on 4."""
    return (
        f"requirement: REQ-X-1\nthresholds:\n  - metric: {metric}\n"
        + textwrap.indent(textwrap.dedent(condition_lines).strip("\n"), "    ")
        + "\n"
    )


# --- the example files -----------------------------------------------------------------------


def test_example_perf_file_parses_to_the_contract_values():
    tf = load_threshold_file(REPO / "thresholds" / "REQ-PERF-001.yaml")
    assert tf.requirement == "REQ-PERF-001"
    assert tf.title == "System must support 1000 concurrent users"
    assert tf.load == LoadDefaults(
        users=1000, spawn_rate=100.0, duration=120.0, warmup=15.0, resources=ResourceSettings(source="local")
    )
    p95, err, tput, p99, cpu, memory, disk = tf.thresholds
    assert [(t.metric, t.target.text, t.target.value, t.resource.source) for t in (cpu, memory, disk)] == [
        ("cpu", "<70%", 70.0, "local"),
        ("memory", "<80%", 80.0, "local"),
        ("disk", "<85%", 85.0, "local"),
    ]
    assert (p95.metric, p95.target, p95.alert) == (
        "p95",
        Condition("<", 200.0, "ms", "<200ms"),
        Condition(">", 500.0, "ms", ">500ms"),
    )
    assert (err.target.value, err.alert.value, err.unit) == (0.001, 0.01, "ratio")
    assert (tput.target, tput.alert) == (
        Condition(">", 1000.0, "req/s", ">1000/s"),
        Condition("<", 500.0, "req/s", "<500/s"),
    )
    assert (p99.request, p99.target, p99.alert.value, p99.min_requests) == ("GET /api/users/[id]", None, 800.0, 500)
    assert p95.min_requests == 1 and p95.request is None
    assert p99.source.endswith("REQ-PERF-001.yaml:20")
    assert tf.sha256 == hashlib.sha256((REPO / "thresholds" / "REQ-PERF-001.yaml").read_bytes()).hexdigest()


def test_example_directory_is_keyed_by_requirement_and_needs_p50_p95_p99():
    files = load_thresholds(REPO / "thresholds")
    assert list(files) == ["REQ-DEMO-001", "REQ-PERF-001"]
    demo = files["REQ-DEMO-001"]
    assert demo.title == "Demo: catalogue browsing stays fast (30-second look)"
    assert demo.load == LoadDefaults(users=20, spawn_rate=10.0, duration=20.0, warmup=5.0)
    assert [
        (t.metric, t.target.text if t.target else None, t.alert.text if t.alert else None) for t in demo.thresholds
    ] == [("p95", "<150ms", ">400ms"), ("error_rate", "<1%", ">5%"), ("p50", "<60ms", None)]
    assert required_percentiles(files) == {50.0, 95.0, 99.0}
    assert required_percentiles(files.values()) == {50.0, 95.0, 99.0}


def test_source_is_file_and_line_of_each_list_item():
    path = write("""
        # comment
        requirement: REQ-X-1
        thresholds:

          - metric: p95
            alert: ">1s"
          - {metric: p99, alert: ">2s"}
        """)
    tf = load_threshold_file(path)
    assert [t.source for t in tf.thresholds] == ["t.yaml:5", "t.yaml:7"]


# --- conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, below, at, above",
    [("<", True, False, False), ("<=", True, True, False), (">", False, False, True), (">=", False, True, True)],
)
def test_each_operator_at_and_around_its_level(op, below, at, above):
    c = Condition(op, 200.0, "ms", f"{op}200ms")
    assert (c.holds(199.999), c.holds(200.0), c.holds(200.001)) == (below, at, above)


@pytest.mark.parametrize(
    "metric, text, op, value, unit",
    [
        ("p95", "<200ms", "<", 200.0, "ms"),
        ("p95", "<200", "<", 200.0, "ms"),  # bare number: ms
        ("p95", "<0.5s", "<", 500.0, "ms"),
        ("p95", "< 200 ms", "<", 200.0, "ms"),
        ("mean", "<=1.5S", "<=", 1500.0, "ms"),
        ("max", ">= 2s", ">=", 2000.0, "ms"),
        ("p99.9", "<1e3ms", "<", 1000.0, "ms"),
        ("error_rate", "<1%", "<", 0.01, "ratio"),
        ("error_rate", "<0.01", "<", 0.01, "ratio"),  # bare fraction
        ("error_rate", "<0.7%", "<", 0.007, "ratio"),  # exactly the float 0.007, not 0.7 * 0.01
        ("error_rate", "<= 0 %", "<=", 0.0, "ratio"),
        ("error_rate", ">100%", None, None, None),  # can never hold: rejected
        ("throughput", ">1000/s", ">", 1000.0, "req/s"),
        ("throughput", ">1000 rps", ">", 1000.0, "req/s"),
        ("throughput", ">1000req/s", ">", 1000.0, "req/s"),
        ("throughput", "> 1000 req/sec", ">", 1000.0, "req/s"),
        ("throughput", ">1000", ">", 1000.0, "req/s"),
        ("throughput", ">12.5 RPS", ">", 12.5, "req/s"),
    ],
)
def test_every_unit_form(metric, text, op, value, unit):
    path = write(one(f'alert: "{text}"', metric))
    if op is None:
        with pytest.raises(ConfigError):
            load_threshold_file(path)
        return
    (t,) = load_threshold_file(path).thresholds
    assert t.alert == Condition(op, value, unit, text)


def test_regression_is_a_relative_ratio():
    assert parse_condition(">10%", "regression") == Condition(">", 0.1, "ratio", ">10%")
    assert parse_condition(">=0.25", "regression").value == 0.25
    assert parse_condition(">150%", "regression").value == 1.5  # more than 100% worse is allowed


def test_percentile_and_unit_properties():
    path = write("""
        requirement: REQ-X-1
        thresholds:
          - {metric: p75, alert: ">1s"}
          - {metric: p99.9, alert: ">1s"}
          - {metric: p95.0, alert: ">1s"}
          - {metric: mean, alert: ">1s"}
          - {metric: error_rate, alert: ">1%"}
          - {metric: throughput, alert: "<1/s"}
          - {metric: p50, regression: ">10%"}
        """)
    ts = load_threshold_file(path).thresholds
    assert [t.metric for t in ts] == ["p75", "p99.9", "p95", "mean", "error_rate", "throughput", "p50"]
    assert [t.percentile for t in ts] == [75.0, 99.9, 95.0, None, None, None, 50.0]
    assert [t.unit for t in ts] == ["ms", "ms", "ms", "ms", "ratio", "req/s", "ms"]
    assert ts[-1].regression == Condition(">", 0.1, "ratio", ">10%") and ts[-1].target is ts[-1].alert is None
    assert required_percentiles([load_threshold_file(path)]) == {75.0, 99.9, 95.0, 50.0}


def test_alert_at_the_target_level_is_allowed():
    path = write(one('target: "<200ms"\nalert: ">=200ms"'))
    (t,) = load_threshold_file(path).thresholds
    assert (t.target.value, t.alert.value) == (200.0, 200.0)


# --- every error line ------------------------------------------------------------------------

TIME = 'expected a time like "<200ms" or "<0.5s"'
RATE = 'expected a rate like "<1%" or "<0.01"'
TPUT = 'expected a throughput like ">1000/s" or ">50 req/s"'
TOP = "expected a mapping with keys requirement, title, load, capacity, thresholds, notify"
ITEM_KEYS = (
    "expected one of metric, request, target, alert, regression, min_requests, latency, abort_on_fail, "
    "abort_after, abort_window, aggregate, aggregate_series, query, unit, mountpoint"
)


@pytest.mark.parametrize(
    "text, message",
    [
        (one('target: "<200mss"'), "t.yaml:4: thresholds[0].target: unknown unit 'mss' in '<200mss'; " + TIME),
        (one('target: "<1%"'), "t.yaml:4: thresholds[0].target: unit '%' in '<1%' does not fit p95; " + TIME),
        (
            one('target: "<200ms"', "throughput"),
            "t.yaml:4: thresholds[0].target: unit 'ms' in '<200ms' does not fit throughput; " + TPUT,
        ),
        (
            one('alert: ">5/s"', "error_rate"),
            "t.yaml:4: thresholds[0].alert: unit '/s' in '>5/s' does not fit error_rate; " + RATE,
        ),
        (
            one("target: 200"),
            "t.yaml:4: thresholds[0].target: missing comparison operator before 200 (quote it with one of < <= > >=); "
            + TIME,
        ),
        (one('target: "200ms"'), "t.yaml:4: thresholds[0].target: missing comparison operator in '200ms'; " + TIME),
        (
            one('target: "=<200ms"'),
            "t.yaml:4: thresholds[0].target: unknown operator '=<' in '=<200ms' (use < <= > >=); " + TIME,
        ),
        (one('target: "<fast"'), "t.yaml:4: thresholds[0].target: no number in '<fast'; " + TIME),
        (one("target:"), "t.yaml:4: thresholds[0].target: no condition given; " + TIME),
        (
            one('target: "<-5ms"'),
            "t.yaml:4: thresholds[0].target: '<-5ms' is not a non-negative finite number; " + TIME,
        ),
        (one('target: "<0ms"'), "t.yaml:4: thresholds[0].target: '<0ms' can never hold; " + TIME),
        (
            one('alert: ">5"', "error_rate"),
            "t.yaml:4: thresholds[0].alert: '>5' is above 100% (a bare number is a fraction: 0.01 = 1%); " + RATE,
        ),
        (
            one('regression: "<10%"'),
            "t.yaml:4: thresholds[0].regression: '<10%' must say how much worse is a regression, with > or >=; "
            'expected a tolerated increase like ">10%" (relative to the baseline)',
        ),
        (
            one('regression: ">10%"\nalert: ">1s"'),
            "t.yaml:4: thresholds[0].regression: cannot share an item with alert (one result holds one value); "
            "expected a separate list item with the same metric for the regression",
        ),
        (one('targt: "<200ms"'), "t.yaml:4: thresholds[0].targt: unknown key (did you mean 'target'?); " + ITEM_KEYS),
        (one("colour: red"), "t.yaml:4: thresholds[0].colour: unknown key; " + ITEM_KEYS),
        (
            one("min_requests: 5"),
            "t.yaml:3: thresholds[0]: p95 has no target, alert or regression; "
            'expected at least one, like target: "<200ms" or alert: ">500ms"',
        ),
        (
            one('alert: ">1s"\nmin_requests: 0'),
            "t.yaml:5: thresholds[0].min_requests: 0 is not a positive whole number; expected a count of requests like 500",
        ),
        (
            one('alert: ">1s"\nmin_requests: "500"'),
            "t.yaml:5: thresholds[0].min_requests: '500' is not a positive whole number; "
            "expected a count of requests like 500",
        ),
        (
            one('alert: ">1s"\nrequest: ""'),
            "t.yaml:5: thresholds[0].request: '' is not a request name; "
            'expected method and name as Locust reports them, like "GET /api/users/[id]"',
        ),
        (
            one('target: "<200ms"\nalert: ">100ms"'),
            "t.yaml:5: thresholds[0].alert: '>100ms' is stricter than target '<200ms' (a value can meet the target and "
            "still fail); expected an alert level at or beyond the target, like '>200ms'",
        ),
        (
            one('target: "<=200ms"\nalert: ">=200ms"'),
            "t.yaml:5: thresholds[0].alert: '>=200ms' is stricter than target '<=200ms' (a value can meet the target and "
            "still fail); expected an alert level at or beyond the target, like '>200ms'",
        ),
        (
            one('target: ">1000/s"\nalert: "<2000/s"', "throughput"),
            "t.yaml:5: thresholds[0].alert: '<2000/s' is stricter than target '>1000/s' (a value can meet the target and "
            "still fail); expected an alert level at or beyond the target, like '<1000/s'",
        ),
        (
            one('target: "<200ms"\nalert: "<500ms"'),
            "t.yaml:5: thresholds[0].alert: '<500ms' points the same way as target '<200ms', so runs that meet the target "
            "would fail; expected the opposite comparison, like '>200ms'",
        ),
        (
            one('alert: ">1s"', "p100"),
            "t.yaml:3: thresholds[0].metric: percentile 'p100' is out of range; expected 0 < NN < 100 "
            "(use min or max for the ends)",
        ),
        (
            one('alert: ">1s"', "avg"),
            "t.yaml:3: thresholds[0].metric: unknown metric 'avg' (did you mean 'mean'?); expected p50, p90, p95, p99, "
            "p99.9 (any pNN or pNN.N), mean, min, max, error_rate, throughput, dropped_iterations (an arrival shape's starts that found no free user), a resource: cpu, memory, disk, promql (or, for loadgate capacity, max_users, max_throughput or headroom)",
        ),
        (
            one('alert: ">1s"', "p9x"),
            "t.yaml:3: thresholds[0].metric: unknown metric 'p9x' (did you mean 'p99'?); expected p50, p90, p95, p99, "
            "p99.9 (any pNN or pNN.N), mean, min, max, error_rate, throughput, dropped_iterations (an arrival shape's starts that found no free user), a resource: cpu, memory, disk, promql (or, for loadgate capacity, max_users, max_throughput or headroom)",
        ),
        (
            one('alert: ">1s"', "p99.99999"),  # f"p{q:g}" would print p100: at most 4 decimals
            "t.yaml:3: thresholds[0].metric: unknown metric 'p99.99999' (did you mean 'p99.9'?); expected p50, p90, p95, "
            "p99, p99.9 (any pNN or pNN.N), mean, min, max, error_rate, throughput, dropped_iterations (an arrival shape's starts that found no free user), a resource: cpu, memory, disk, promql (or, for loadgate capacity, max_users, max_throughput or headroom)",
        ),
        (
            "requirement: REQ-X-1\nthresholds:\n  - alert: '>1s'\n",
            "t.yaml:3: thresholds[0].metric: missing; expected p50, p90, p95, p99, p99.9 (any pNN or pNN.N), mean, min, "
            "max, error_rate, throughput, dropped_iterations (an arrival shape's starts that found no free user), a resource: cpu, memory, disk, promql (or, for loadgate capacity, max_users, max_throughput or headroom)",
        ),
        (
            "requirement: REQ-X-1\nthresholds:\n  - p95\n",
            "t.yaml:3: thresholds[0]: 'p95' is not a mapping; expected an item like '- metric: p95' with target and/or alert",
        ),
        (
            "requirement: REQ-X-1\nthresholds:\n  - {metric: p95, alert: '>1s'}\n  - {metric: p95, alert: '>2s'}\n",
            "t.yaml:4: thresholds[1]: p95 is already checked by the item at t.yaml:3; expected one item per metric and "
            "request",
        ),
        (
            "requirement: REQ-X-1\nthresholds: []\n",
            "t.yaml:2: thresholds: '[]' is not a non-empty list; expected a list of thresholds like '- metric: p95'",
        ),
        (
            "requirement: REQ-X-1\nthresholds:\n",
            "t.yaml:2: thresholds: null is not a non-empty list; expected a list of thresholds like '- metric: p95'",
        ),
        ("requirement: REQ-X-1\n", "t.yaml:1: thresholds: missing; expected a list of thresholds like '- metric: p95'"),
        (
            "title: x\nthresholds: [{metric: p95, alert: '>1s'}]\n",
            "t.yaml:1: requirement: missing; expected a requirement ID like REQ-PERF-001",
        ),
        (
            "requirement: req-perf-1\nthresholds: [{metric: p95, alert: '>1s'}]\n",
            "t.yaml:1: requirement: 'req-perf-1' is not a requirement ID; expected a form like REQ-PERF-001 "
            "(pattern ^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$)",
        ),
        (
            "requirement: REQ-X-1\ntitle: [a]\nthresholds: [{metric: p95, alert: '>1s'}]\n",
            "t.yaml:2: title: \"['a']\" is not text; expected a one-line description of the requirement",
        ),
        (
            "requirement: REQ-X-1\nrequirment: REQ-X-2\n",
            "t.yaml:2: requirment: unknown key (did you mean 'requirement'?); "
            + TOP.replace("a mapping with keys", "one of"),
        ),
        (
            "requirement: REQ-X-1\nrequirement: REQ-X-2\n",
            "t.yaml:2: requirement: given twice (first on line 1); expected each key once",
        ),
        ("- 1\n", "t.yaml:1: (top level): a list is not a threshold file; " + TOP),
        ("just text\n", "t.yaml:1: (top level): the value 'just text' is not a threshold file; " + TOP),
        ("", "t.yaml:1: (top level): the file is empty; " + TOP),
        ("# only a comment\n", "t.yaml:1: (top level): the file is empty; " + TOP),
        (
            "requirement: REQ-X-1\nthresholds:\n  - metric: p95\n    alert: >500ms\n",
            "t.yaml:4: (yaml): expected chomping or indentation indicators, but found '0' at column 14 (YAML reads a value "
            "starting with '>' as a folded block); expected valid YAML; quote conditions, like alert: \">500ms\"",
        ),
        (
            "requirement: REQ-X-1\nthresholds: [\n",
            "t.yaml:3: (yaml): expected the node content, but found '<stream end>' at column 1; expected valid YAML; quote "
            'conditions, like alert: ">500ms"',
        ),
        (
            "requirement: !!python/object:os.system x\n",
            "t.yaml:1: (yaml): could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system' at "
            'column 14; expected valid YAML; quote conditions, like alert: ">500ms"',
        ),
    ],
)
def test_error_line(text, message):
    assert error_of(text) == message


LOAD_OK = "thresholds: [{metric: p95, alert: '>1s'}]\nrequirement: REQ-X-1\n"


@pytest.mark.parametrize(
    "load, message",
    [
        ("users: 0", "t.yaml:3: load.users: 0 is not a positive whole number; expected a count like 1000"),
        ("users: 2.5", "t.yaml:3: load.users: 2.5 is not a positive whole number; expected a count like 1000"),
        ("users: true", "t.yaml:3: load.users: true is not a positive whole number; expected a count like 1000"),
        (
            "spawn_rate: 0",
            "t.yaml:3: load.spawn_rate: 0 is not a positive number; expected users started per second, like 100",
        ),
        (
            "duration: 2 minutes",
            "t.yaml:3: load.duration: '2 minutes' is not a positive duration; expected a duration "
            "like 30s, 2m or 1h30m",
        ),
        (
            "duration: 0s",
            "t.yaml:3: load.duration: '0s' is not a positive duration; expected a duration like 30s, 2m or 1h30m",
        ),
        ("warmup: -5", "t.yaml:3: load.warmup: -5 is not a duration; expected a duration like 30s, 2m or 1h30m"),
        (
            "min_requests: 0",
            "t.yaml:3: load.min_requests: 0 is not a positive whole number; expected a count like 1000",
        ),
        (
            "host: localhost:8080",
            "t.yaml:3: load.host: 'localhost:8080' is not an HTTP URL; expected a base URL like http://127.0.0.1:8089",
        ),
        (
            "user: 5",
            "t.yaml:3: load.user: unknown key (did you mean 'users'?); expected one of users, spawn_rate, "
            "duration, warmup, min_requests, host, resources, select, arrival",
        ),
        (
            "select: users",
            "t.yaml:3: load.select: 'users' is not a selection mode; expected tasks (only the tagged "
            "tasks run) or journeys (the User classes run whole)",
        ),
    ],
)
def test_load_block_errors(load, message):
    assert error_of(f"{LOAD_OK}load: {{{load}}}\n") == message


def test_load_block_values_and_defaults():
    tf = load_threshold_file(
        write(
            LOAD_OK + "load:\n  users: 5\n  spawn_rate: 2.5\n  duration: 1h30m\n"
            "  warmup: 0\n  min_requests: 100\n  host: https://example.test:8443\n"
        )
    )
    assert tf.load == LoadDefaults(5, 2.5, 5400.0, 0.0, 100, "https://example.test:8443")
    assert load_threshold_file(write(LOAD_OK)).load == LoadDefaults()
    assert load_threshold_file(write(LOAD_OK + "load:\n  select: journeys\n")).load.select == "journeys"
    assert load_threshold_file(write(LOAD_OK)).title == ""


def test_load_must_be_a_mapping():
    assert error_of(LOAD_OK + "load: 5\n") == (
        "t.yaml:3: load: 5 is not a mapping; expected keys users, spawn_rate, "
        "duration, warmup, min_requests, host, resources, select, arrival"
    )


# --- files and directories -------------------------------------------------------------------


def test_missing_file_is_a_config_error_with_file_and_line():
    with pytest.raises(ConfigError) as exc:
        load_threshold_file("nope.yaml")
    assert str(exc.value) == (
        "nope.yaml:1: (file): cannot read: No such file or directory; expected a readable YAML threshold file"
    )
    with pytest.raises(ConfigError, match=r"^nope/:1: \(file\): cannot read"):
        load_thresholds("nope/")


def test_non_utf8_file():
    Path("t.yaml").write_bytes(b"requirement: REQ-X-1\ntitle: caf\xe9\n")
    with pytest.raises(ConfigError) as exc:
        load_threshold_file("t.yaml")
    assert str(exc.value) == "t.yaml:2: (file): not UTF-8 text; expected a UTF-8 YAML file"


def test_directory_sorted_yaml_and_yml_hidden_and_other_files_ignored():
    os.mkdir("th")
    write("requirement: B-1\nthresholds: [{metric: p95, alert: '>1s'}]\n", "th/b.yml")
    write("requirement: A-1\nthresholds: [{metric: p95, alert: '>1s'}]\n", "th/z.yaml")
    write("not: [valid\n", "th/.#z.yaml")
    write("not yaml at all: [", "th/notes.txt")
    files = load_thresholds("th")
    assert list(files) == ["B-1", "A-1"]  # file-name order
    assert files["A-1"].path == os.path.join("th", "z.yaml")
    assert list(load_thresholds("th/z.yaml")) == ["A-1"]


def test_two_files_for_one_requirement_name_both():
    os.mkdir("th")
    write("requirement: A-1\nthresholds: [{metric: p95, alert: '>1s'}]\n", "th/a.yaml")
    write("# same\n\nrequirement: A-1\nthresholds: [{metric: p99, alert: '>1s'}]\n", "th/b.yaml")
    with pytest.raises(ConfigError) as exc:
        load_thresholds("th")
    assert str(exc.value) == (
        f"{os.path.join('th', 'b.yaml')}:3: requirement: A-1 is already defined in "
        f"{os.path.join('th', 'a.yaml')}; expected one threshold file per requirement"
    )


def test_empty_directory():
    os.mkdir("th")
    with pytest.raises(ConfigError) as exc:
        load_thresholds("th")
    assert str(exc.value) == (
        "th:1: (directory): no threshold files (*.yaml, *.yml); expected one YAML file per "
        "requirement, like REQ-PERF-001.yaml"
    )


def test_requirement_pattern():
    assert all(REQUIREMENT_RE.match(r) for r in ("REQ-PERF-001", "OR-SCALE-001", "A-1", "X1-Y2-Z3"))
    assert not any(REQUIREMENT_RE.match(r) for r in ("REQ", "req-1", "REQ_1", "REQ-", "-REQ-1", "REQ--1", "1A-1"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_condition_text_parses_or_gives_one_config_error_line(text):
    for metric in ("p95", "error_rate", "throughput"):
        Path("t.yaml").write_text(
            f"requirement: REQ-X-1\nthresholds:\n  - metric: {metric}\n    target: {json.dumps(text)}\n",
            encoding="utf-8",
        )
        try:
            load_threshold_file("t.yaml")
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith("t.yaml:") and "; expected " in message


def test_abort_on_fail_with_grace_and_window(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(
        'requirement: REQ-A-1\nthresholds:\n  - metric: p95\n    alert: ">500ms"\n'
        "    abort_on_fail: true\n    abort_after: 30s\n    abort_window: 5s\n"
    )
    t = load_threshold_file(p).thresholds[0]
    assert (t.abort_on_fail, t.abort_after, t.abort_window) == (True, 30.0, 5.0)


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            '  - metric: p95\n    target: "<200ms"\n    abort_on_fail: true\n',
            'a.yaml:5: thresholds[0].abort_on_fail: needs an alert level to abort on; expected an alert like ">500ms" in the same item',
        ),
        (
            '  - metric: p95\n    alert: ">1s"\n    abort_on_fail: "yes"\n',
            "a.yaml:5: thresholds[0].abort_on_fail: 'yes' is not true or false; expected abort_on_fail: true",
        ),
        (
            '  - metric: p95\n    alert: ">1s"\n    abort_after: 30s\n',
            "a.yaml:5: thresholds[0].abort_after: has no effect without abort_on_fail: true; expected abort_on_fail: true beside it, or remove it",
        ),
        (
            '  - metric: p95\n    alert: ">1s"\n    abort_on_fail: true\n    abort_window: soon\n',
            "a.yaml:6: thresholds[0].abort_window: 'soon' is not a duration; expected a duration like 30s or 1m",
        ),
    ],
)
def test_abort_errors(tmp_path, body, expected):
    p = tmp_path / "a.yaml"
    p.write_text("requirement: REQ-A-1\nthresholds:\n" + body)
    with pytest.raises(ConfigError) as e:
        load_threshold_file(p)
    assert str(e.value).replace(str(tmp_path) + "/", "") == expected

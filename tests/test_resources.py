"""Resource thresholds without Prometheus: parsing and error lines, the evidence rules over local samples,
the local sampler against psutil's own view, a malformed server reply, and a real run with source: local."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import textwrap
import threading
import time

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from conftest import E2E, load, run_cli
from test_report import chart_json
from test_report_browser import chromium, open_and_shoot  # noqa: F401 - chromium is a fixture
from loadgate.analysis.window import Window
from loadgate.data import resources as store
from loadgate.errors import ConfigError, RunError
from loadgate.gate.thresholds import load_threshold_file
from loadgate.run.local_resources import LocalSampler
from loadgate.sources import prometheus
from loadgate.sources.collect import ResourceQuery, aggregate, evaluate_query


def parse(tmp_path, body: str):
    path = tmp_path / "t.yaml"
    path.write_text("requirement: REQ-X-1\n" + textwrap.dedent(body).lstrip("\n"))
    return load_threshold_file(path)


def error_of(tmp_path, body: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(tmp_path, body)
    return str(exc.value).replace(str(tmp_path) + "/", "")


# --- threshold files -------------------------------------------------------------------------------


def test_resource_items_parse_to_percent_levels_and_queries(tmp_path):
    tf = parse(
        tmp_path,
        """
        load:
          resources: {source: prometheus, prometheus: "http://127.0.0.1:9090", selector: 'instance="a:9100"', step: 5s}
        thresholds:
          - metric: cpu
            target: "<70%"
            alert: ">0.9"
            aggregate: p95
          - metric: disk
            target: "<85%"
            mountpoint: /
          - metric: promql
            query: sum(rate(http_requests_total[30s]))
            alert: ">5 req/s"
            unit: req/s
        """,
    )
    cpu, disk, promql = tf.thresholds
    assert (cpu.target.value, cpu.alert.value, cpu.unit, cpu.resource.aggregate) == (70.0, 90.0, "%", "p95")
    assert cpu.resource.source == "prometheus" and cpu.resource.selector == 'instance="a:9100"'
    assert cpu.resource.step == 5.0 and cpu.resource.key == f"{tmp_path}/t.yaml:5"
    assert disk.resource.mountpoint == "/" and disk.resource.aggregate == "mean"
    assert (promql.alert.value, promql.unit, promql.resource.query) == (
        5.0,
        "req/s",
        "sum(rate(http_requests_total[30s]))",
    )
    assert cpu.request is None and promql.percentile is None


def test_without_a_resources_block_the_source_is_local(tmp_path):
    tf = parse(tmp_path, "thresholds:\n  - metric: memory\n    target: '<80%'\n")
    assert tf.thresholds[0].resource.source == "local" and tf.load.resources is None


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "thresholds:\n  - metric: cpu\n    alert: '>90%'\n    aggregate: median\n",
            "t.yaml:5: thresholds[0].aggregate: 'median' is not an aggregate; expected mean, max or a percentile like p95",
        ),
        (
            "thresholds:\n  - metric: cpu\n    alert: '>90%'\n    aggregate_series: avg\n",
            "t.yaml:5: thresholds[0].aggregate_series: 'avg' is not a way to combine series; expected max, sum or mean",
        ),
        (
            "thresholds:\n  - metric: cpu\n    alert: '>90ms'\n",
            "t.yaml:4: thresholds[0].alert: unit 'ms' in '>90ms' does not fit cpu; expected a share like \"<70%\" "
            '(or a fraction like "<0.7")',
        ),
        (
            "thresholds:\n  - metric: memory\n    alert: '>90%'\n    request: GET /x\n",
            "t.yaml:5: thresholds[0].request: does not apply to metric memory (a resource of the target, not a request); "
            "expected remove it; resource thresholds take aggregate and target/alert",
        ),
        (
            "thresholds:\n  - metric: cpu\n    alert: '>90%'\n    query: up\n",
            "t.yaml:5: thresholds[0].query: does not apply to metric cpu (it has a built-in query); expected metric: promql "
            "for your own query, or remove it",
        ),
        (
            "thresholds:\n  - metric: promql\n    alert: '>1'\n",
            "t.yaml:3: thresholds[0].query: missing; expected a PromQL expression giving one series, like "
            "'sum(rate(http_requests_total[30s]))'",
        ),
        (
            "thresholds:\n  - metric: promql\n    query: up\n    alert: '>1'\n",
            "t.yaml:3: thresholds[0].metric: promql needs a Prometheus source; expected load.resources with source: "
            "prometheus and prometheus: URL",
        ),
        (
            "thresholds:\n  - metric: memory\n    alert: '>90%'\n    mountpoint: /\n",
            't.yaml:5: thresholds[0].mountpoint: does not apply to metric memory; expected a mount point like "/" on a '
            "disk threshold",
        ),
        (
            "thresholds:\n  - metric: p95\n    alert: '>1s'\n    aggregate: max\n",
            "t.yaml:5: thresholds[0].aggregate: does not apply to metric p95; expected a resource metric (cpu, memory, disk, "
            "promql) beside it, or remove it",
        ),
        (
            "thresholds:\n  - metric: cpu\n    target: '<90%'\n    abort_on_fail: true\n",
            't.yaml:5: thresholds[0].abort_on_fail: needs an alert level to abort on; expected an alert like ">500ms" in '
            "the same item",
        ),
        (
            "load:\n  resources: {source: datadog}\nthresholds:\n  - metric: cpu\n    alert: '>90%'\n",
            "t.yaml:3: load.resources.source: 'datadog' is not a source; expected local (this machine, sampled by loadgate) "
            "or prometheus",
        ),
        (
            "load:\n  resources: {source: prometheus, selector: 'instance=a'}\nthresholds:\n  - metric: cpu\n    alert: '>90%'\n",
            "t.yaml:3: load.resources.selector: 'instance=a' is not a list of label matchers; expected PromQL matchers like "
            '\'instance="10.0.0.5:9100"\' or \'job="node", instance=~"web.*"\'',
        ),
    ],
)
def test_every_resource_error_is_one_line_with_file_line_and_key(tmp_path, body, message):
    assert error_of(tmp_path, body) == message


# --- the evidence rules, over real local rows ------------------------------------------------------


def _rows(metric, stamps, values, labels="{}"):
    return [(t, "local", metric, "psutil", labels, v) for t, v in zip(stamps, values)]


def _query(metric="memory", **kw):
    return ResourceQuery(key="t.yaml:4", requirement="REQ-X-1", metric=metric, source="local", **kw)


def test_aggregates_are_exact():
    values = [10.0, 20.0, 30.0, 70.0]
    assert aggregate(values, "mean") == 32.5 and aggregate(values, "max") == 70.0
    assert aggregate(values, "p95") == np.percentile(values, 95)


def test_window_points_scrape_gaps_and_no_samples():
    stamps = np.arange(100.0, 121.0)
    rows = _rows("memory", stamps, np.linspace(40, 60, stamps.size))
    value, _ = evaluate_query(_query(), Window(105.0, 115.0), rows)
    assert (value.points, value.expected, value.reason) == (11, 11, None)
    assert value.value == pytest.approx(np.mean(np.linspace(40, 60, 21)[5:16]))
    gappy = [r for r in rows if r[0] % 3 == 0]  # every third second: fewer than half the points
    value, _ = evaluate_query(_query(), Window(105.0, 115.0), gappy)
    assert value.value is None and value.reason.startswith("REQ-X-1 memory: scrape gaps: 4 of 11 expected points")
    value, _ = evaluate_query(_query("cpu"), Window(105.0, 115.0), rows)
    assert value.value is None and "no local samples were recorded" in value.reason


def test_local_disk_is_the_fullest_filesystem_unless_a_mountpoint_is_named():
    stamps = [1.0, 2.0, 3.0]
    rows = _rows("disk", stamps, [10, 11, 12], '{mountpoint="/"}') + _rows(
        "disk", stamps, [50, 50, 50], '{mountpoint="/data"}'
    )
    fullest, _ = evaluate_query(_query("disk"), Window(1.0, 3.0), rows)
    root, _ = evaluate_query(_query("disk", mountpoint="/"), Window(1.0, 3.0), rows)
    assert (fullest.value, root.value) == (50.0, 11.0)


# --- a malformed server reply (a stub: a real Prometheus does not send one) -------------------------


@pytest.fixture
def stub():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (
                b'{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": "x"}]}}'
                if "query_range" in self.path
                else b"<html>not prometheus</html>"
            )
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_malformed_reply_makes_the_threshold_inconclusive(stub):
    with pytest.raises(RunError, match="answered /api/v1/targets with HTTP 200 and no JSON"):
        prometheus.scrape_interval(stub)
    query = ResourceQuery(
        key="t.yaml:4", requirement="REQ-X-1", metric="cpu", source="prometheus", prometheus=stub, step=1.0
    )
    value, rows = evaluate_query(query, Window(0.0, 10.0), [])
    assert value.value is None and rows is None
    assert value.reason == f"REQ-X-1 cpu: Prometheus at {stub} answered query_range with a malformed series"


# --- the local sampler against psutil's own view ----------------------------------------------------


def test_local_samples_match_psutils_own_view(tmp_path):
    memory = []
    with LocalSampler(str(tmp_path), period=0.5) as sampler:
        cpu_before = psutil.cpu_times()
        for _ in range(8):
            memory.append(psutil.virtual_memory().percent)
            time.sleep(0.5)
        cpu_after = psutil.cpu_times()
    rows = store.read_rows(str(tmp_path))
    assert rows == sampler.rows and len(rows) >= 6
    mem = [r[5] for r in rows if r[2] == "memory"]
    cpu = [r[5] for r in rows if r[2] == "cpu"]
    assert abs(np.mean(mem) - np.mean(memory)) <= 3.0
    busy = lambda t: sum(t) - t.idle - getattr(t, "iowait", 0.0)  # noqa: E731 - psutil's own busy time
    own = 100 * (busy(cpu_after) - busy(cpu_before)) / (sum(cpu_after) - sum(cpu_before))
    assert abs(np.mean(cpu) - own) <= 10.0, (cpu, own)
    assert {r[4] for r in rows if r[2] == "disk"} >= {'{mountpoint="/"}'}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """One real 3-user run of REQ-T-PASS gated on this machine's cpu, memory and disk (source: local)."""
    tmp_path = tmp_path_factory.mktemp("local-run")
    (tmp_path / "REQ-T-PASS.yaml").write_text(
        textwrap.dedent("""\
        requirement: REQ-T-PASS
        thresholds:
          - metric: p95
            alert: ">5s"
          - metric: cpu
            alert: ">100%"
          - metric: memory
            target: "<99%"
          - metric: disk
            alert: ">99.9%"
        """)
    )
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(tmp_path / "REQ-T-PASS.yaml"),
        "--users",
        "3",
        "--duration",
        "4s",
        "--out",
        str(tmp_path / "out"),
    )
    return res, next(p for p in (tmp_path / "out").iterdir() if p.is_dir())


def test_a_real_run_with_source_local(local_run):
    res, run_dir = local_run
    assert res.code == 0, res.stdout + res.stderr
    rows = {t["metric"]: t for t in load(run_dir, "verdict.json")["thresholds"]}
    for metric in ("cpu", "memory", "disk"):
        assert rows[metric]["status"] == "pass" and rows[metric]["resource_source"] == "local"
        assert rows[metric]["requests"] >= 3  # points in the window
    df = pq.read_table(run_dir / "resources.parquet").to_pandas()
    assert set(df["source"]) == {"local"} and {"cpu", "memory", "disk"} <= set(df["metric"])
    run = load(run_dir, "run.json")
    # the whole window is covered, to within one sampling period at each end (samples are on a 1 s grid)
    assert df["timestamp"].min() <= run["ramp_up_done"] + 1.0 and df["timestamp"].max() >= run["end"] - 1.5


def test_the_report_draws_the_resources_with_their_levels(local_run, chromium, tmp_path):  # noqa: F811 - the fixture
    _res, run_dir = local_run
    data = chart_json((run_dir / "report.html").read_text(encoding="utf-8"))
    assert [r["metric"] for r in data["resources"]][:2] == ["cpu", "memory"]
    assert {(l["metric"], l["level"], l["value"]) for l in data["levels"]} >= {
        ("cpu", "alert", 100.0),
        ("memory", "target", 99.0),
    }
    dom = open_and_shoot(chromium, run_dir, tmp_path, "report-resources.png")
    assert 'id="chart-resources"' in dom and "memory (local)" in dom


def test_abort_on_fail_stops_the_run_when_a_resource_alert_holds_over_its_window(tmp_path):
    (tmp_path / "REQ-T-PASS.yaml").write_text(
        textwrap.dedent("""\
        requirement: REQ-T-PASS
        thresholds:
          - metric: memory
            alert: ">1%"          # held on any machine: the run must stop after the window
            abort_on_fail: true
            abort_window: 2s
        """)
    )
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(tmp_path / "REQ-T-PASS.yaml"),
        "--users",
        "2",
        "--duration",
        "60s",
        "--out",
        str(tmp_path / "out"),
    )
    assert res.code == 1, res.stdout + res.stderr
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    run, verdict = load(run_dir, "run.json"), load(run_dir, "verdict.json")
    assert (
        run["aborted"].startswith("aborted after ")
        and "REQ-T-PASS memory >1% held over the last 2s (mean " in run["aborted"]
    )
    assert verdict["verdict"] == "fail" and verdict["reasons"][0] == run["aborted"]
    assert run["end"] - run["start"] < 60  # stopped long before its duration
    assert (run_dir / "samples.parquet").exists() and pq.read_table(run_dir / "resources.parquet").num_rows > 0


def test_local_values_are_skipped_when_the_target_is_elsewhere(local_run, tmp_path):
    _res, run_dir = local_run
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    run = load(copy, "run.json")
    (copy / "run.json").write_text(json.dumps({**run, "host": "http://10.0.0.5:8080"}))
    res = run_cli("gate", str(copy), "--thresholds", run["options"]["thresholds"])
    assert res.code == 0, res.stdout + res.stderr
    rows = {t["metric"]: t for t in load(copy, "verdict.json")["thresholds"]}
    assert [rows[m]["status"] for m in ("cpu", "memory", "disk")] == ["skipped"] * 3
    assert rows["cpu"]["reason"].startswith(
        "REQ-T-PASS cpu: source: local measures this machine, but the target "
        "http://10.0.0.5:8080 is elsewhere; set load.resources.source: prometheus"
    )


def test_a_prometheus_threshold_without_a_server_stops_before_the_run(tmp_path):
    (tmp_path / "REQ-T-PASS.yaml").write_text(
        "requirement: REQ-T-PASS\nload:\n  resources: {source: prometheus}\n"
        "thresholds:\n  - metric: cpu\n    alert: '>90%'\n"
    )
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(tmp_path / "REQ-T-PASS.yaml"),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate run: error: {tmp_path}/REQ-T-PASS.yaml:5: load.resources.prometheus: missing "
        "for metric cpu; set the server's URL there or pass --prometheus URL"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_built_in_queries_narrowed_by_the_selector():
    node = 'instance="a:9100"'
    assert prometheus.builtin_query("memory", node) == (
        '100 * (1 - node_memory_MemAvailable_bytes{instance="a:9100"} / node_memory_MemTotal_bytes{instance="a:9100"})'
    )
    assert prometheus.builtin_query("cpu", None, rate_window_s=4) == (
        '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[4s])))'
    )
    disk = prometheus.builtin_query("disk", node, "/")
    assert disk.startswith('max by (instance) (100 * (1 - node_filesystem_avail_bytes{instance="a:9100",fstype!~')
    assert 'mountpoint="/"' in disk
    box = 'namespace="shop", container="api"'
    assert prometheus.builtin_query("cpu", box, rate_window_s=60) == (
        '100 * sum(rate(container_cpu_usage_seconds_total{namespace="shop", container="api"}[60s])) / '
        'sum(container_spec_cpu_quota{namespace="shop", container="api"} / '
        'container_spec_cpu_period{namespace="shop", container="api"})'
    )
    assert prometheus.builtin_query("memory", box) == (
        '100 * sum(container_memory_working_set_bytes{namespace="shop", container="api"}) / '
        'sum(container_spec_memory_limit_bytes{namespace="shop", container="api"})'
    )


def test_check_names_an_unreachable_prometheus_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        (tmp_path / "REQ-T-PASS.yaml").write_text(
            f"requirement: REQ-T-PASS\nload:\n  resources: {{source: prometheus, prometheus: '{url}'}}\n"
            "thresholds:\n  - metric: cpu\n    alert: '>90%'\n  - metric: memory\n    alert: '>90%'\n"
        )
        res = run_cli(
            "check",
            "--scenarios",
            str(E2E / "scenarios"),
            "--thresholds",
            str(tmp_path / "REQ-T-PASS.yaml"),
            "--prometheus",
        )
    assert res.code == 2
    lines = [l for l in res.stdout.splitlines() if "unreachable" in l]
    assert lines == [
        f"error: {tmp_path}/REQ-T-PASS.yaml:5: Prometheus at {url} is unreachable (cannot connect); "
        "start it or pass --prometheus URL"
    ]

"""``load.select: journeys`` and the trap warning, with real Locust against a real WSGI shop.

The scenario is a typical shop journey: a login in on_start, a Browse TaskSet left by an untagged ``leave`` task
calling ``self.interrupt()``, a Checkout SequentialTaskSet tagged as a whole, untagged navigation to
the home page. The shop (werkzeug, on 127.0.0.1) counts every request it answers.
"""

from __future__ import annotations

import shutil
import sys

import pandas as pd

from conftest import E2E, load, run_cli, run_dir_of

sys.path.insert(0, str(E2E / "journeys"))
from app import Server  # noqa: E402  (the test shop lives beside its scenario)

JOURNEYS = E2E / "journeys"
SCENARIOS = JOURNEYS / "scenarios"
BROWSE, CHECKOUT = "REQ-JRN-BROWSE", "REQ-JRN-CHECKOUT"


def _run(tmp_path, select: str, server: Server):
    out = tmp_path / select
    res = run_cli(
        "run",
        "--requirement",
        BROWSE,
        "--requirement",
        CHECKOUT,
        "--scenarios",
        str(SCENARIOS),
        "--thresholds",
        str(JOURNEYS / select),
        "--out",
        str(out),
        "--host",
        server.url,
        "--warmup",
        "0s",
        "--duration",
        "6s",
        "--users",
        "10",
    )
    run_dir = run_dir_of(out)
    return res, run_dir, pd.read_parquet(run_dir / "samples.parquet")


def _checkout_share(samples: pd.DataFrame) -> float:
    return samples["name"].isin(["/cart", "/pay"]).mean()


def test_journeys_run_whole_users_and_checkout_gets_its_share(tmp_path):
    with Server() as server:
        res, run_dir, samples = _run(tmp_path, "journeys", server)
        served = dict(server.app.counts)
    assert res.code == 0, res.stderr
    assert "warning" not in res.stderr  # journeys: no trap to warn about
    # every request the shop answered is a sample, and nothing else is, but for the requests the run's stop
    # cut off in flight (recorded failed, "no response before the run stopped"): the shop may or may not have
    # seen each of those
    key = samples["request_type"] + " " + samples["name"]
    cut = samples["exception"] == "no response before the run stopped"
    recorded = key.value_counts().to_dict()
    answered, cut_off = key[~cut].value_counts().to_dict(), key[cut].value_counts().to_dict()
    assert set(recorded) == set(served)
    for name, n in served.items():
        assert answered.get(name, 0) <= n <= answered.get(name, 0) + cut_off.get(name, 0), (name, n, recorded)
    # navigation ran: the untagged home task, and leave (else nobody would reach Checkout again)
    assert served["GET /"] > 0
    # Checkout gets its share: weights Browse 3 : Checkout 1 : home 1 give it ~13% of requests
    assert _checkout_share(samples) > 0.07, recorded
    by_name = samples.groupby("name")["requirement"].unique().to_dict()
    assert list(by_name["/"]) == [""]  # background load: no requirement
    assert list(by_name["/products/[id]"]) == [BROWSE]  # attribution per issuing task, as before
    assert list(by_name["/cart"]) == [CHECKOUT] and list(by_name["/pay"]) == [CHECKOUT]
    assert list(by_name["/login"]) == [f"{BROWSE},{CHECKOUT}"]  # on_start: all requirements of the run
    summary = load(run_dir, "summary.json")
    assert sorted(summary["requirements"]) == [BROWSE, CHECKOUT]
    home = [r for r in summary["requests"] if r["name"] == "/"]
    assert len(home) == 1 and home[0]["requirement"] is None
    assert (
        summary["overall"]["requests"]
        == summary["requirements"][BROWSE]["requests"]
        + summary["requirements"][CHECKOUT]["requests"]
        + home[0]["requests"]
        - served["POST /login"]
    )
    verdict = load(run_dir, "verdict.json")
    assert {t["requirement"] for t in verdict["thresholds"]} == {BROWSE, CHECKOUT}  # background is not gated
    report = (run_dir / "report.html").read_text()
    assert 'id="background-load"' in report and "background (not gated)" in report


def test_select_tasks_traps_users_in_browse_and_says_so(tmp_path):
    """The same scenario under Locust's tag filter: leave is dropped, users stay in Browse (the bug report)."""
    with Server() as server:
        res, _run_dir, samples = _run(tmp_path, "tasks", server)
    assert res.code == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "TaskSet Browse of Shopper cannot be left under REQ-JRN-BROWSE" in warnings[0]
    assert "leave (line 15)" in warnings[0] and "select: journeys" in warnings[0]
    assert (samples["name"] == "/").sum() == 0  # untagged navigation does not run under select: tasks
    assert _checkout_share(samples) < 0.03  # Checkout only before the users get trapped


def test_check_warns_on_the_trap_and_only_there(tmp_path):
    res = run_cli("check", "--scenarios", str(SCENARIOS), "--thresholds", str(JOURNEYS / "tasks"))
    assert res.code == 0, res.stdout  # a warning, not an error: the run works, only not as meant
    warnings = [line for line in res.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {SCENARIOS / 'shop_journeys.py'}:9: TaskSet Browse of Shopper cannot be left under {BROWSE}: "
        "its interrupt() task leave (line 15) is not tagged with it, so Locust's tag filter drops it and every "
        "user that enters Browse stays there; tag that task @tag(\"REQ-JRN-BROWSE\") or set 'select: journeys' "
        f"in the load: block of {JOURNEYS / 'tasks' / 'REQ-JRN-BROWSE.yaml'}"
    ]
    assert res.stdout.splitlines()[-1].endswith("0 problem(s), 1 warning(s)")
    # journeys: the same scenario is healthy
    res = run_cli("check", "--scenarios", str(SCENARIOS), "--thresholds", str(JOURNEYS / "journeys"))
    assert res.code == 0 and "warning" not in res.stdout, res.stdout
    # a tagged way out is healthy too, even under select: tasks
    healthy = tmp_path / "scenarios"
    healthy.mkdir()
    text = (SCENARIOS / "shop_journeys.py").read_text()
    fixed = text.replace(
        "    @task(1)\n    def leave(self):", f'    @tag("{BROWSE}")\n    @task(1)\n    def leave(self):'
    )
    assert fixed != text
    (healthy / "shop_journeys.py").write_text(fixed)
    res = run_cli("check", "--scenarios", str(healthy), "--thresholds", str(JOURNEYS / "tasks"))
    assert res.code == 0 and "warning" not in res.stdout, res.stdout


def test_check_sees_interrupt_however_it_is_called(tmp_path):
    """The task's code is read: interrupt(reschedule=False), a nested helper call, a lambda task."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "flows.py").write_text(
        "from locust import HttpUser, TaskSet, tag, task\n\n"
        "class A(TaskSet):\n"
        "    tasks = [tag('REQ-T-1')(lambda self: self.client.get('/a')), lambda self: self.interrupt()]\n\n"
        "class B(TaskSet):\n"
        "    @tag('REQ-T-1')\n    @task\n    def b(self):\n        self.client.get('/b')\n\n"
        "    @task\n    def out(self):\n        if True:\n            self.interrupt(reschedule=False)\n\n"
        "class C(TaskSet):  # no way out at all: the author's choice, not the filter's doing\n"
        "    @tag('REQ-T-1')\n    @task\n    def c(self):\n        self.client.get('/c')\n\n"
        "class U(HttpUser):\n    tasks = [A, B, C]\n"
    )
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "REQ-T-1.yaml").write_text(
        "requirement: REQ-T-1\nthresholds:\n  - metric: p95\n    alert: '>1s'\n"
    )
    res = run_cli("check", "--scenarios", str(tmp_path / "s"), "--thresholds", str(tmp_path / "t"))
    warned = [line.split(": TaskSet ")[1].split(" of ")[0] for line in res.stdout.splitlines() if "warning:" in line]
    assert sorted(warned) == ["A", "B"], res.stdout


def test_requirements_of_one_run_must_agree_on_select(tmp_path):
    mixed = tmp_path / "thresholds"
    mixed.mkdir()
    shutil.copy(JOURNEYS / "journeys" / f"{BROWSE}.yaml", mixed)
    shutil.copy(JOURNEYS / "tasks" / f"{CHECKOUT}.yaml", mixed)
    res = run_cli(
        "run",
        "--requirement",
        BROWSE,
        "--requirement",
        CHECKOUT,
        "--scenarios",
        str(SCENARIOS),
        "--thresholds",
        str(mixed),
        "--out",
        str(tmp_path / "out"),
        "--host",
        "http://127.0.0.1:9",
    )
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate run: error: {mixed / (BROWSE + '.yaml')}: load.select: journeys, but "
        "another requirement of this run selects tasks; run them separately or give their "
        "threshold files the same 'select:'"
    ]
    assert not (tmp_path / "out").exists()

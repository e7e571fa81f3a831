"""The drivers of a session: which one ``loadgate run`` takes, and which run problems each adds."""

from __future__ import annotations

import json

from loadgate.gate.verdict import GENERATOR_SATURATED
from loadgate.run import drivers
from loadgate.run.capacity_search import CapacityPlan
from loadgate.run.collect import collect
from loadgate.run.drivers.base import Driver
from loadgate.run.drivers.capacity import Capacity
from loadgate.run.drivers.headless import Headless
from loadgate.run.drivers.ui import WebUi
from loadgate.run.options import RunOptions
from loadgate.run.record import RunRecord

OPTS = RunOptions(
    requirements=("REQ-A-1",),
    users=10,
    spawn_rate=10.0,
    duration=30.0,
    warmup=2.0,
    host=None,
    scenarios="s",
    thresholds="t",
    out="o",
)
T0 = 1_800_000_000.0
# the recorder's report of a run whose ramp-up never completed (6 of 10 users) and whose one process was
# above 90% CPU for all of its 20 seconds
RECORDER = {
    "start": T0,
    "ramp_up_done": None,
    "end": T0 + 20,
    "users_reached": 6,
    "cpu": {"local": [[T0 + i, 99.0] for i in range(1, 21)]},
    "schedule": {},
}


def test_loadgate_run_takes_headless_unless_a_driver_registered_before_it_answers(monkeypatch):
    got = drivers.run_driver({"prometheus": "http://127.0.0.1:9090"}, {})
    assert isinstance(got, Headless) and got.prometheus == "http://127.0.0.1:9090"

    class Arrival(Headless):
        name = "arrival"

        @classmethod
        def for_run(cls, flags, files):
            return cls() if flags.get("arrival") else None

    monkeypatch.setattr(drivers, "RUN_DRIVERS", (Arrival, *drivers.RUN_DRIVERS))
    assert type(drivers.run_driver({"arrival": True}, {})) is Arrival
    assert type(drivers.run_driver({}, {})) is Headless


def _problems(driver: Driver, rec: RunRecord | None = None) -> list[str]:
    return driver.run_problems(rec or RunRecord("d"), OPTS, RECORDER)


def test_each_driver_adds_the_run_problems_that_apply_to_it():
    headless = _problems(Headless())
    assert headless[0] == "ramp-up to 10 users never completed (reached 6)"
    assert [p for p in headless[1:] if p.startswith(GENERATOR_SATURATED)] == headless[1:] and len(headless) == 2
    # a web UI test has no planned user count; its generator's load still counts
    assert _problems(WebUi(8089, lambda d: 0)) == headless[1:]
    # each capacity step checks its users, saturation and lateness itself: none over the whole run
    assert _problems(Capacity(CapacityPlan(1, 4, 2.0, 0.1, 60.0), {})) == []
    # a stopped run: no user-count problem
    assert _problems(Headless(), RunRecord("d", interrupted="interrupted by SIGINT")) == headless[1:]


def test_collect_lists_the_drivers_problems_between_its_own(tmp_path):
    (tmp_path / "recorder.json").write_text(
        json.dumps({**RECORDER, "locust_requests": 5, "unhandled_exceptions": 1, "exceptions": ["boom"]})
    )
    rec = RunRecord(str(tmp_path), meta={"start": T0})
    collect(rec, OPTS, Headless().run_problems)
    assert rec.problems[0].startswith("ramp-up to 10 users")
    assert rec.problems[1].startswith(GENERATOR_SATURATED)
    assert rec.problems[2:] == [
        "5 of 5 requests Locust counted were not recorded as samples",
        "the scenario raised 1 kind(s) of unhandled exception, first: boom",
    ]
    assert json.loads((tmp_path / "run.json").read_text())["problems"] == rec.problems

"""The capacity plan without Locust: the capacity: block, headroom at its levels, the regression of a
bracketed capacity, the trend fit, the runway and the scaling arithmetic, against hand calculations."""

from __future__ import annotations

import math
import textwrap

import pytest

from loadgate.analysis import plan as calc
from loadgate.errors import ConfigError
from loadgate.gate.capacity import capacity_results
from loadgate.gate.headroom import drop_interval
from loadgate.gate.thresholds import load_threshold_file

HEADROOM = """
capacity:
  peak: {users: 100}
  growth: 8%/month
  limits: {cpu: 500m, memory: 512Mi}
thresholds:
  - metric: headroom
    target: ">50%"
    alert: "<20%"
"""


def _file(tmp_path, body: str, name: str = "REQ-CAP-9.yaml"):
    path = tmp_path / name
    path.write_text("requirement: REQ-CAP-9\n" + textwrap.dedent(body).lstrip())
    return load_threshold_file(str(path))


def _headroom(tmp_path, max_users, first_not_passing=None, at_least=False, body=HEADROOM):
    tf = _file(tmp_path, body)
    doc = {
        "max_users": max_users,
        "first_not_passing_users": first_not_passing,
        "at_least": at_least,
        "inconclusive": False,
        "throughput_at_max": None,
        "steps": [],
    }
    [r] = capacity_results({tf.requirement: tf}, doc, requirements=[tf.requirement])
    return r


def test_the_capacity_block_is_parsed_with_its_units(tmp_path):
    tf = _file(tmp_path, HEADROOM)
    c = tf.capacity
    assert (c.peak.kind, c.peak.value, c.peak.text) == ("users", 100.0, "100 users")
    assert c.growth == pytest.approx(0.08) and c.growth_text == "8%/month"
    assert c.cpu_limit == 0.5 and c.memory_limit == 512 * 2**20
    yearly = _file(
        tmp_path,
        'capacity:\n  peak: {rate: 1200/s}\n  growth: 30%/year\nthresholds:\n  - {metric: p95, alert: ">1s"}\n',
    )
    assert yearly.capacity.peak.kind == "rate" and yearly.capacity.peak.value == 1200
    assert (1 + yearly.capacity.growth) ** 12 == pytest.approx(1.30)  # compounding: twelve months make a year


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'capacity:\n  peak: {users: -5}\nthresholds:\n  - {metric: p95, alert: ">1s"}\n',
            "REQ-CAP-9.yaml:3: capacity.peak.users: -5 is not a positive whole number",
        ),
        (
            'capacity:\n  growth: 8 percent\nthresholds:\n  - {metric: p95, alert: ">1s"}\n',
            "REQ-CAP-9.yaml:3: capacity.growth: '8 percent' is not a growth rate; expected a percentage per day",
        ),
        (
            'capacity:\n  limits: {cpu: 5 cores}\nthresholds:\n  - {metric: p95, alert: ">1s"}\n',
            "REQ-CAP-9.yaml:3: capacity.limits.cpu: '5 cores' is not a CPU quantity",
        ),
        (
            'thresholds:\n  - {metric: headroom, alert: "<20%"}\n',
            "REQ-CAP-9.yaml:3: thresholds: metric headroom (capacity ÷ peak − 1) has no peak to divide by",
        ),
    ],
)
def test_capacity_block_mistakes_name_file_line_and_key(tmp_path, body, message):
    with pytest.raises(ConfigError) as e:
        _file(tmp_path, body)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "users, status",
    [
        (151, "pass"),  # 51% > 50%
        (150, "warn"),  # exactly 50%: not above the target
        (121, "warn"),
        (120, "warn"),  # exactly 20%: not below the alert (120 / 100 - 1 would be 0.19999999999999996)
        (119, "fail"),  # 19% < 20%
        (80, "fail"),  # below the peak: negative headroom
    ],
)
def test_headroom_passes_warns_and_fails_exactly_at_its_levels(tmp_path, users, status):
    r = _headroom(tmp_path, users, first_not_passing=users + 10)
    assert r.status == status, r.reason
    assert r.value == pytest.approx((users - 100) / 100, abs=0)
    assert r.ci95 == (r.value, (users + 10 - 100) / 100)  # from the steps that bracket the capacity


def test_headroom_of_a_lower_bound_decides_only_once_it_meets_the_level(tmp_path):
    assert _headroom(tmp_path, 300, at_least=True).status == "pass"
    assert _headroom(tmp_path, 110, at_least=True).status == "inconclusive"


def test_headroom_against_a_rate_uses_the_throughput_at_capacity(tmp_path):
    body = HEADROOM.replace("{users: 100}", "{rate: 50/s}")
    tf = _file(tmp_path, body)
    doc = {
        "max_users": 40,
        "first_not_passing_users": 50,
        "at_least": False,
        "inconclusive": False,
        "throughput_at_max": 60.0,
        "steps": [{"users": 40, "throughput": 60.0}, {"users": 50, "throughput": 66.0}],
    }
    [r] = capacity_results({tf.requirement: tf}, doc, requirements=[tf.requirement])
    assert r.value == pytest.approx(0.2) and r.ci95 == pytest.approx((0.2, 0.32)) and r.status == "warn"


def test_a_regression_needs_the_drop_beyond_the_tolerance_at_the_ends_of_both_brackets(tmp_path):
    tf = _file(tmp_path, 'thresholds:\n  - {metric: max_users, regression: ">10%"}\n')
    base = {"max_users": 100, "first_not_passing_users": 125}
    # 100 -> 80 (bracket 80..90): at least (100 - 90) / 100 = 10% down, not beyond 10%: not a regression
    assert drop_interval(base, {"max_users": 80, "first_not_passing_users": 90}) == pytest.approx((0.10, 0.36))
    near = {**base, "max_users": 80, "first_not_passing_users": 90, "inconclusive": False, "at_least": False}
    [r] = capacity_results({tf.requirement: tf}, near, requirements=[tf.requirement], baseline=base)
    assert r.status == "pass" and r.value == pytest.approx(-0.2) and r.ci95 == pytest.approx((-0.36, -0.10))
    far = {**near, "max_users": 50, "first_not_passing_users": 62}
    [r] = capacity_results({tf.requirement: tf}, far, requirements=[tf.requirement], baseline=base)
    assert r.status == "fail" and "at least 38.0%" in r.reason  # (100 - 62) / 100


def test_the_trend_is_a_least_squares_fit_of_log_capacity_on_the_date():
    day = calc.DAY_S
    dates, caps = [0.0, 30 * day, 60 * day], [100.0, 90.0, 85.0]
    t = calc.fit_trend(dates, caps)
    # by hand: x = -60, -30, 0 days; y = ln 100, ln 90, ln 85; slope = sum((x-mx)(y-my)) / sum((x-mx)^2)
    x, y = [-60.0, -30.0, 0.0], [math.log(v) for v in caps]
    mx, my = sum(x) / 3, sum(y) / 3
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
    assert t.slope_per_day == pytest.approx(slope)
    assert t.monthly == pytest.approx(math.exp(slope * 365.2425 / 12) - 1)
    assert t.at(60 * day) == pytest.approx(math.exp(my + slope * (0 - mx)))
    assert calc.fit_trend(dates[:2], caps[:2]) is None  # fewer than three runs: no trend
    assert calc.fit_trend([0.0, 0.0, 0.0], caps) is None  # one date: no slope to fit


def test_the_runway_solves_for_the_month_the_grown_peak_meets_the_capacity():
    # 150 users against a peak of 100 growing 8% a month, capacity flat: 1.08^m = 1.5
    w = calc.runway(150, 100, 0.08, 0.0, now=0.0)
    assert w.months == pytest.approx(math.log(1.5) / math.log(1.08))
    assert w.date == pytest.approx(w.months * 365.2425 / 12 * 86400)
    # the alert level of 20% headroom: 1.2 * 100 * 1.08^m = 150
    assert calc.runway(150, 100, 0.08, 0.0, 0.0, level=0.2).months == pytest.approx(math.log(1.25) / math.log(1.08))
    # a capacity falling 2% a month closes the gap faster: 1.08^m / 0.98^m = 1.5
    assert calc.runway(150, 100, 0.08, -0.02, 0.0).months == pytest.approx(
        math.log(1.5) / (math.log(1.08) - math.log(0.98))
    )
    assert calc.runway(150, 100, 0.02, 0.05, 0.0).never
    assert calc.runway(110, 100, 0.08, 0.0, 0.0, level=0.2).already


def test_cost_per_user_and_replicas():
    cost = calc.linear_cost([10, 20, 40], [0.3, 0.5, 0.9])  # 0.1 core fixed + 0.02 core a user
    assert cost.fixed == pytest.approx(0.1) and cost.per_unit == pytest.approx(0.02)
    assert cost.at(1000) == pytest.approx(20.1)
    assert calc.replicas(20.1, 3 * 2**30, 0.5, 512 * 2**20) == (41, "cpu")  # 20.1 / 0.5 = 40.2 -> 41
    assert calc.replicas(1.0, 3 * 2**30, 0.5, 512 * 2**20) == (6, "memory")
    assert calc.replicas(1.0, 1.0, 0.5, None) == (2, "cpu")
    assert calc.linear_cost([10], [0.4]).per_unit == pytest.approx(0.04)  # one step: through the origin
    falling = calc.linear_cost([5, 10, 20], [0.8, 1.8, 0.3])  # noise beyond the cost: the highest step, per user
    assert (falling.fixed, falling.per_unit, falling.points) == (0.0, pytest.approx(0.015), 1)


def _v1_database(path: str) -> None:
    """A history.sqlite as loadgate wrote it before capacity runs were recorded (schema version 1), with a run."""
    import sqlite3

    from loadgate.history import store

    conn = sqlite3.connect(path)
    for statement in store._MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO runs (run_id, run_dir, kind, requirements, started, verdict, exit_code, recorded_at)"
        " VALUES ('old', '/x/old', 'run', 'REQ-CAP-9', 1.0, 'pass', 0, 1.0)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_capacity_run_migrates_an_older_history_and_is_listed(tmp_path):
    import sqlite3

    from loadgate.history import capacity_store, store

    db = str(tmp_path / "history.sqlite")
    _v1_database(db)
    capacity = {
        "max_users": 40,
        "first_not_passing_users": 60,
        "at_least": False,
        "inconclusive": False,
        "knee": {"users": 45.0},
        "throughput_at_max": 39.5,
        "max_throughput": 39.5,
        "plan": {"start_users": 5, "max_users": 80},
        "release": {"label": "v7", "date": 86400.0 * 31},
    }
    run = {"requirements": ["REQ-CAP-9"], "start": 100.0, "git": {"commit": "a" * 40}, "versions": {"loadgate": "9.9"}}
    plan = {"peak": {"value": 8.0, "unit": "users"}, "scaling": {"cpu": {"per_user": 0.002}, "memory": None}}
    store.record(
        db,
        str(tmp_path / "20260101T000000Z-REQ-CAP-9"),
        run,
        {},
        {"verdict": "pass", "exit_code": 0},
        kind="run",
        capacity=capacity_store.row(capacity, run, plan),
    )
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION == 4
    assert [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY seq")] == ["old", "20260101T000000Z-REQ-CAP-9"]
    conn.close()
    [row] = capacity_store.capacity_runs(db, ["REQ-CAP-9"])  # the plain run of the old database is no capacity run
    assert (row["release"], row["dated"], row["max_users"], row["first_not_passing_users"]) == (
        "v7",
        86400.0 * 31,
        40,
        60,
    )
    assert (row["git_commit"], row["loadgate_version"], row["cpu_per_user"], row["peak"]) == (
        "a" * 40,
        "9.9",
        0.002,
        8.0,
    )
    table = capacity_store.format_capacity_runs([row])
    assert table.splitlines()[1].split()[:6] == [
        "20260101T000000Z-REQ-CAP-9",
        "v7",
        "1970-02-01",
        "00:00",
        "REQ-CAP-9",
        "5-80",
    ]


def test_capacity_md_keeps_a_hostile_release_label_inside_its_cell():
    from loadgate.outputs.capacity_md import render

    label = "v1 | `rm -rf` \n# heading"
    plan = {
        "run_id": "r1",
        "release": label,
        "dated": 0.0,
        "requirement": "REQ-CAP-9",
        "unit": "users",
        "capacity": {"value": 10.0, "upper": 15.0, "at_least": False, "throughput_at_max": 10.0, "knee": None},
        "peak": None,
        "headroom": None,
        "regression": None,
        "runway": None,
        "growth": {},
        "history": [
            {
                "run_id": "r1",
                "release": label,
                "dated": 0.0,
                "capacity": 10.0,
                "at_least": False,
                "commit": None,
                "verdict": "pass",
                "current": True,
            }
        ],
        "trend": {"monthly": None, "reason": "1 run(s) with a bracketed capacity"},
        "scaling": {"reason": "no local resource samples", "run": "r1"},
    }
    md = render(plan)
    row = next(l for l in md.splitlines() if l.startswith("| v1"))
    assert row.count(" | ") == 5 and "\\|" in row and "`rm" not in row  # six cells still, no code span opened
    assert not any(l.startswith("# heading") for l in md.splitlines())


def test_the_scaling_estimate_names_its_prometheus_without_credentials():
    from loadgate.history.plan_scaling import _public

    assert _public("http://user:secret@10.0.0.5:9090/prom") == "http://10.0.0.5:9090/prom"
    assert _public("http://[::1]:9090") == "http://[::1]:9090"
    assert _public("http://127.0.0.1:9090") == "http://127.0.0.1:9090"


def test_a_search_over_arrival_rate_is_kept_and_listed_as_a_rate(tmp_path):
    from loadgate.history import capacity_store, store
    from loadgate.history.plan import _earlier

    db = str(tmp_path / "history.sqlite")
    run = {"requirements": ["REQ-CAP-9"], "start": 100.0, "git": {"commit": "b" * 40}}
    searches = {
        "20260101T000000Z-REQ-CAP-9": {  # over users
            "max_users": 40,
            "first_not_passing_users": 60,
            "throughput_at_max": 39.5,
            "plan": {"start_users": 5, "max_users": 80},
            "release": {"label": "v7", "date": 10.0},
        },
        "20260102T000000Z-REQ-CAP-9": {  # over arrival rate
            "quantity": "rate",
            "max_rate": 27.5,
            "first_not_passing_rate": 40.0,
            "max_users": None,
            "throughput_at_max": 27.1,
            "plan": {"start_rate": 10.0, "max_rate": 80.0, "pool": 60},
            "release": {"label": "v8", "date": 20.0},
        },
    }
    for name, capacity in searches.items():
        row = capacity_store.row(capacity, run)
        store.record(db, str(tmp_path / name), run, {}, {"verdict": "pass", "exit_code": 0}, kind="run", capacity=row)
    users, rate = capacity_store.capacity_runs(db, ["REQ-CAP-9"])
    assert (users["quantity"], users["max_users"], users["max_rate"]) == ("users", 40, None)
    assert (rate["quantity"], rate["max_rate"], rate["first_not_passing_rate"], rate["max_users"]) == (
        "rate",
        27.5,
        40.0,
        None,
    )
    table = capacity_store.format_capacity_runs([users, rate]).splitlines()
    assert table[1].split()[5:8] == ["5-80", "40", "60"]
    assert table[2].split()[5:8] == ["10/s-80/s", "27.5/s", "40/s"]
    # a plan compares like with like: a rate search with earlier rate searches, a users search with users
    later = str(tmp_path / "20260103T000000Z-REQ-CAP-9")
    by_rate = _earlier(later, ["REQ-CAP-9"], "x", 30.0, "rate", True)
    by_users = _earlier(later, ["REQ-CAP-9"], "x", 30.0, "users", False)
    assert [(r["release"], r["capacity"], r["upper"]) for r in by_rate] == [("v8", 27.5, 40.0)]
    assert [(r["release"], r["capacity"], r["upper"]) for r in by_users] == [("v7", 40.0, 60)]

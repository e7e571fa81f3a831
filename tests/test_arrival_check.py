"""``loadgate check`` of arrival shapes: a rate with nothing tagged to run, and a pool too small for the rate
by Little's law (users busy = rate x time per iteration, the time the requirement's highest latency target)."""

from __future__ import annotations

import pytest

from conftest import run_cli

SCENARIO = """from locust import HttpUser, constant, tag, task


class Open(HttpUser):
    wait_time = constant(0)

    @tag("REQ-OPEN-1")
    @task
    def x(self):
        self.client.get("/x")
"""


def project(tmp_path, *files: tuple[str, str]):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "open.py").write_text(SCENARIO)
    (tmp_path / "thresholds").mkdir()
    for name, text in files:
        (tmp_path / "thresholds" / name).write_text(text)
    return str(tmp_path / "scenarios"), str(tmp_path / "thresholds")


def open_file(max_users: int, *, extra: str = "", rate: str = "200/s") -> str:
    return (
        f"requirement: REQ-OPEN-1\nload:\n  arrival:\n    rate: {rate}\n    max_users: {max_users}\nthresholds:\n"
        f'  - metric: p95\n    target: "<300ms"\n  - metric: p99\n    target: "<500ms"\n    alert: ">2s"\n{extra}'
    )


def test_a_pool_below_rate_times_the_highest_latency_target_is_refused_at_max_users(tmp_path):
    scenarios, thr = project(tmp_path, ("REQ-OPEN-1.yaml", open_file(99)))
    res = run_cli("check", "--scenarios", scenarios, "--thresholds", thr)
    path = f"{thr}/REQ-OPEN-1.yaml"
    assert res.code == 2, res.stdout + res.stderr
    [line] = [l for l in res.stdout.splitlines() if l.startswith("error:")]
    assert line == (
        f"error: {path}:5: load.arrival.max_users: 99 users cannot start 200/s: by Little's law the users "
        "busy at once are rate x time per iteration = 200/s x 0.5 s = 100, taking as the time per iteration "
        f"REQ-OPEN-1's highest latency target (p99 <500ms at {path}:9); the rest of the starts would be "
        "dropped. Raise max_users to at least 100 or lower the rate"
    )
    github = run_cli("check", "--scenarios", scenarios, "--thresholds", thr, "--format", "github")
    assert f"::error file={path},line=5::load.arrival.max_users: 99 users" in github.stdout


@pytest.mark.parametrize(
    "text",
    [
        open_file(100),  # exactly rate x time
        open_file(5, rate="2/s"),
        # no latency target to take the time from: nothing to compare
        "requirement: REQ-OPEN-1\nload:\n  arrival: {rate: 200/s, max_users: 1}\nthresholds:\n"
        '  - metric: error_rate\n    alert: ">1%"\n',
        # latency from the schedule needs no paced user class under an arrival shape
        open_file(100, extra='  - metric: p50\n    latency: intended\n    target: "<100ms"\n'),
    ],
)
def test_a_shape_that_can_work_passes(tmp_path, text):
    scenarios, thr = project(tmp_path, ("REQ-OPEN-1.yaml", text))
    res = run_cli("check", "--scenarios", scenarios, "--thresholds", thr)
    assert res.code == 0, res.stdout + res.stderr


def test_a_rate_for_a_requirement_with_no_tagged_task_is_refused_at_load_arrival(tmp_path):
    lonely = (
        "requirement: REQ-OPEN-2\ntitle: nobody runs it\nload:\n  warmup: 5s\n  arrival: {rate: 50/s}\n"
        'thresholds:\n  - metric: p95\n    alert: ">1s"\n'
    )
    scenarios, thr = project(tmp_path, ("REQ-OPEN-1.yaml", open_file(100)), ("REQ-OPEN-2.yaml", lonely))
    res = run_cli("check", "--scenarios", scenarios, "--thresholds", thr)
    assert res.code == 2
    errors = [l for l in res.stdout.splitlines() if l.startswith("error:")]
    assert errors == [
        f"error: {thr}/REQ-OPEN-2.yaml:5: load.arrival: a rate of 50/s for REQ-OPEN-2, but no task in "
        f'{scenarios} is tagged @tag("REQ-OPEN-2"), so every start would have nothing to run; tag the '
        "tasks that provide its evidence, or remove load.arrival"
    ]


def test_a_ramp_is_checked_at_its_highest_stage_target(tmp_path):
    ramp = (
        "requirement: REQ-OPEN-1\nload:\n  arrival:\n    stages:\n      - {duration: 10s, target: 40/s}\n"
        "      - {duration: 10s, target: 400/s}\n    max_users: 100\nthresholds:\n"
        '  - metric: mean\n    target: "<0.5s"\n'
    )
    scenarios, thr = project(tmp_path, ("REQ-OPEN-1.yaml", ramp))
    res = run_cli("check", "--scenarios", scenarios, "--thresholds", thr)
    assert (
        res.code == 2
        and (
            f"error: {thr}/REQ-OPEN-1.yaml:7: load.arrival.max_users: 100 users cannot start 400/s "
            "(the highest stage target): by Little's law"
        )
        in res.stdout
    )
    assert "= 400/s x 0.5 s = 200," in res.stdout and "(mean <0.5s at" in res.stdout

"""The ``load.arrival`` block: parsing, its errors (file:line, key, the fix) and the schedule's integral."""

import pytest

from loadgate.errors import ConfigError
from loadgate.gate.thresholds import load_threshold_file
from loadgate.units import parse_rate


def _file(tmp_path, arrival: str):
    p = tmp_path / "t.yaml"
    p.write_text(
        "requirement: REQ-A\nload:\n  arrival:\n" + arrival + "thresholds:\n  - metric: p95\n    target: <200ms\n"
    )
    return str(p)


def test_rates_in_any_unit():
    assert parse_rate("200/s") == 200 and parse_rate("12000/m") == 200 and parse_rate("7200/h") == 2
    assert parse_rate(5) == 5.0 and parse_rate("2.5") == 2.5
    with pytest.raises(ValueError):
        parse_rate("fast")


def test_constant_rate(tmp_path):
    shape = load_threshold_file(_file(tmp_path, "    rate: 200/s\n    max_users: 40\n")).load.arrival
    assert (shape.rate, shape.max_users, shape.distribution, shape.peak) == (200.0, 40, "constant", 200.0)
    assert shape.expected(10, 12.5) == pytest.approx(500)


def test_ramp_integrates_linearly(tmp_path):
    shape = load_threshold_file(
        _file(tmp_path, "    stages:\n      - {duration: 10s, target: 100/s}\n      - {duration: 20s, target: 100/s}\n")
    ).load.arrival
    assert shape.rate_at(5) == 50 and shape.rate_at(25) == 100 and shape.rate_at(99) == 100
    assert shape.expected(0, 10) == pytest.approx(500) and shape.expected(0, 30) == pytest.approx(2500)
    assert shape.expected(30, 31) == pytest.approx(100)  # the last target holds after the ramp


@pytest.mark.parametrize(
    "body, line, key, fix",
    [
        ("    rate: fast\n", 4, "load.arrival.rate", "200/s"),
        ("    rate: 10/s\n    max_users: 0\n", 5, "load.arrival.max_users", "like 2000"),
        ("    rate: 10/s\n    distribution: bursty\n", 5, "load.arrival.distribution", "poisson"),
        ("    max_users: 5\n", 3, "load.arrival", "rate: 200/s"),
        ("    stages:\n      - {duration: soon, target: 5/s}\n", 5, "load.arrival.stages[0].duration", "30s"),
        ("    rate: 0/s\n", 3, "load.arrival", "above 0"),
    ],
)
def test_mistakes_name_line_key_and_fix(tmp_path, body, line, key, fix):
    path = _file(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_threshold_file(path)
    assert f"{path}:{line}: {key}:" in str(e.value) and fix in str(e.value)

"""live_scopes: rules grouped by scope, each distinct request matched once, and at most so many rules a tick.

The monitor must still agree with :class:`test_live.Reference` (the direct filter) whenever every rule fits in
a tick; past the cap it evaluates the rules that can abort first and the others in turn, so that over
enough ticks every crossing the reference sees is shown, and no tick evaluates more than the cap.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loadgate.data.samples import SCHEMA
from loadgate.plugin.live import CROSSED_SHOWN, LiveMonitor, Rule
from loadgate.plugin.live_scopes import Scopes
from test_live import T0, Reference, batch, recorded


def rule(request=None, *, requirement="REQ-A-1", metric="p95", op=">", value=0.0, text=">0ms", **extra):
    return {
        "requirement": requirement,
        "metric": metric,
        "request": request,
        "op": op,
        "value": value,
        "text": text,
        **extra,
    }


def named(b: pa.RecordBatch, names: list[str], requirement: str = "REQ-A-1") -> pa.RecordBatch:
    """``b`` with its rows spread over ``names`` (GET requests) and one requirement label."""
    n = b.num_rows
    b = b.set_column(
        SCHEMA.get_field_index("name"), SCHEMA.field("name"), pa.array([names[i % len(names)] for i in range(n)])
    )
    b = b.set_column(SCHEMA.get_field_index("request_type"), SCHEMA.field("request_type"), pa.array(["GET"] * n))
    return b.set_column(SCHEMA.get_field_index("requirement"), SCHEMA.field("requirement"), pa.array([requirement] * n))


def test_a_key_is_matched_by_type_and_name_by_name_alone_and_by_each_requirement_of_its_label():
    rules = [
        Rule(**r)
        for r in (
            rule(),
            rule("GET /x"),
            rule("/x"),
            rule("POST /x"),
            rule(requirement="REQ-B-2"),
            rule("/x", metric="p50"),
        )
    ]
    scopes = Scopes(rules)
    assert scopes.rules == [[0], [1], [2, 5], [3], [4]]  # rules of one scope share it, in their order
    assert scopes.key_scopes[scopes.key("REQ-A-1", "GET", "/x")] == (0, 1, 2)
    assert scopes.key_scopes[scopes.key("REQ-A-1,REQ-B-2", "POST", "/x")] == (0, 2, 3, 4)
    assert scopes.key_scopes[scopes.key("REQ-C-3", "GET", "/x")] == ()
    assert scopes.key_scopes[scopes.key(None, "GET", "/x")] == ()
    assert scopes.key_scopes[scopes.key("REQ-A-1", None, None)] == (0,)  # a row without a name: requirement-wide only
    assert scopes.key("REQ-A-1", "GET", "/x") == 0  # a key is matched once, then looked up


@pytest.mark.parametrize("as_recorded", [False, True])
def test_row_keys_give_each_row_the_key_of_its_label_type_and_name(as_recorded):
    rng = np.random.default_rng(2)
    b = batch(rng, T0, 300)
    scopes = Scopes([Rule(**rule("GET /x"))])
    keys = scopes.row_keys(recorded(b) if as_recorded else b)
    triples = list(
        zip(b.column("requirement").to_pylist(), b.column("request_type").to_pylist(), b.column("name").to_pylist())
    )
    assert [scopes.key(*t) for t in triples] == keys.tolist()
    assert len(set(keys.tolist())) == len(set(triples))


def test_no_tick_evaluates_more_than_the_cap_and_in_turn_every_crossing_is_shown():
    names = [f"/item/{i}" for i in range(60)]
    rules = [rule(f"GET {n}", metric=m) for n in names for m in ("p95", "max")]  # 120 rules, 60 scopes
    mon, ref = LiveMonitor(rules, rules_per_tick=25), Reference(rules)
    rng = np.random.default_rng(4)
    for s in range(3):
        b = named(batch(rng, T0 + s, 600), names)
        mon.add(b)
        ref.add(b)
    now = T0 + 3
    want, _ = ref.evaluate(now, started=T0, ramped=True)
    assert len(want["crossed"]) == 120
    evaluated = []
    due = mon._due

    def counted(present):
        chosen = due(present)
        evaluated.append(sum(len(mon.scopes.rules[s]) for s in chosen))
        return chosen

    mon._due = counted
    for _ in range(5):
        snap, _ = mon.evaluate(now, started=T0, ramped=True)
    assert max(evaluated) <= 25 and sum(evaluated) >= 120
    assert [snap["crossed"][i] for i in range(CROSSED_SHOWN)] == want["crossed"][:CROSSED_SHOWN]
    assert snap["crossed"][CROSSED_SHOWN:] == [f"and {120 - CROSSED_SHOWN} more"]
    assert sorted(mon.crossed.values()) == sorted(want["crossed"])


def test_rules_that_can_abort_come_first_whatever_the_others():
    names = [f"/item/{i}" for i in range(300)]
    rules = [rule(f"GET {n}") for n in names] + [
        rule("GET /item/299", metric="error_rate", op=">", value=0.1, text=">10%", abort_on_fail=True, window=2.0)
    ]
    mon = LiveMonitor(rules, rules_per_tick=10)
    rng = np.random.default_rng(5)
    for s in range(4):
        b = named(batch(rng, T0 + s, 900), names)  # batch() fails ~20% of requests: the abort rule holds
        mon.add(b)
    _, abort = mon.evaluate(T0 + 4, started=T0, ramped=True)
    assert abort is not None and "REQ-A-1 error_rate [GET /item/299] >10% held over the last 2s" in abort


def test_a_crossing_is_forgotten_once_its_scope_has_no_rows_left_in_the_window():
    mon = LiveMonitor([rule("GET /old"), rule("GET /new")])
    rng = np.random.default_rng(6)
    mon.add(named(batch(rng, T0, 50), ["/old"]))
    assert len(mon.evaluate(T0 + 1, started=T0, ramped=True)[0]["crossed"]) == 1
    for s in range(1, 15):
        mon.add(named(batch(rng, T0 + s, 50), ["/new"]))
    snap, _ = mon.evaluate(T0 + 15, started=T0, ramped=True)
    assert len(snap["crossed"]) == 1 and snap["crossed"][0].startswith("REQ-A-1 p95 [GET /new] >0ms (")


def test_without_rules_batches_keep_no_keys():
    mon = LiveMonitor([])
    mon.add(batch(np.random.default_rng(1), T0, 20))
    assert mon.batches[0].keys is None

"""The open model's options: ``--arrival-rate`` / ``--max-users`` over the threshold files' ``load.arrival``,
and the pool (its driver is :mod:`loadgate.run.drivers.arrival`).

Iterations start at a set rate (per requirement: its threshold file's ``load.arrival``, or the flags for
every requirement of the run), run by a pool of users spawned up front; a start with no free user is
dropped and counted (:mod:`loadgate.plugin.arrival` does this inside Locust). ``--users`` keeps its
closed meaning: given alone it runs the closed model even over a file's ``load.arrival`` (as k6's
``--vus`` replaces a script's scenarios); given with ``--arrival-rate`` it is a contradiction, refused.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from loadgate.errors import ConfigError
from loadgate.gate.arrival import ArrivalShape
from loadgate.gate.thresholds import ThresholdFile
from loadgate.units import format_duration

Shapes = tuple[tuple[str, ArrivalShape], ...]


def default_pool(shape: ArrivalShape) -> int:
    """The pool when none is given: a second's worth of starts at the peak rate (iterations up to a second
    long are never dropped at a steady rate)."""
    return max(1, math.ceil(shape.peak))


def resolve(flags: Mapping[str, Any], files: Mapping[str, ThresholdFile], reqs: tuple[str, ...]) -> Shapes:
    """Each requirement's arrival shape for this run, or () for the closed model. Raises ConfigError."""
    rate, pool = flags.get("arrival_rate"), flags.get("max_users")
    shapes = {r: files[r].load.arrival for r in reqs if r in files}
    if rate is not None and flags.get("users") is not None:
        raise ConfigError(
            f"--users {flags['users']} with --arrival-rate {rate:g}/s: --users is the closed model's "
            "fixed user count, --arrival-rate starts iterations at a rate with a pool of --max-users "
            "users; drop --users (and give --max-users N for the pool), or drop --arrival-rate"
        )
    opened = rate is not None or (flags.get("users") is None and any(shapes.values()))
    if not opened:
        if pool is not None:
            raise ConfigError(
                f"--max-users {pool}: the pool of an open-model run; give --arrival-rate 200/s too "
                "(or load.arrival in the threshold file), or --users N for a closed-model run"
            )
        return ()
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"--arrival-rate {rate!r}: expected iterations per second > 0, like 200/s or 12000/m")
    if pool is not None and pool < 1:
        raise ConfigError(f"--max-users {pool}: expected the pool's size, a whole number of users > 0, like 2000")
    _check_modes(flags, files, reqs)
    out = []
    for r in reqs:
        shape = shapes.get(r)
        if rate is not None:
            shape = ArrivalShape(
                rate=float(rate),
                max_users=shape.max_users if shape else None,
                distribution=shape.distribution if shape else "constant",
            )
        elif shape is None:
            other = next(q for q in reqs if shapes.get(q))
            raise ConfigError(
                f"{files[r].path}: load: has no 'arrival:' while {other}'s threshold file has one; an "
                "open-model run starts every requirement's iterations at a rate: add "
                "'arrival: {rate: 200/s, max_users: 2000}' under load:, give --arrival-rate for all, "
                "or run them separately"
            )
        if pool is not None:
            shape = replace(shape, max_users=int(pool))
        out.append((r, shape if shape.max_users else replace(shape, max_users=default_pool(shape))))
    return tuple(out)


def _check_modes(flags: Mapping[str, Any], files: Mapping[str, ThresholdFile], reqs: tuple[str, ...]) -> None:
    if flags.get("ui"):
        raise ConfigError(
            "--ui with an open-model load (--arrival-rate or load.arrival): the web UI sets a user "
            "count; run headless, or give --users N to explore with a closed model"
        )
    journeys = [files[r].path for r in reqs if r in files and files[r].load.select == "journeys"]
    if journeys:
        raise ConfigError(
            f"{journeys[0]}: load.select: journeys with an open-model load: each start runs one "
            "tagged task, not a whole User class; use select: tasks, or give --users N"
        )


def pool_size(shapes: Shapes) -> int:
    """Users of the run's pool: every requirement's max_users (one pool serves them all)."""
    return sum(s.max_users or 0 for _r, s in shapes)


def headline_rate(shapes: Shapes) -> float | None:
    """``options.arrival_rate`` of run.json: the first requirement's rate (its peak when it ramps)."""
    if not shapes:
        return None
    shape = shapes[0][1]
    return shape.rate if shape.rate is not None and not shape.stages else shape.peak


def describe(shape: ArrivalShape) -> str:
    if shape.stages:
        ramp = ", ".join(f"{st.target:g}/s over {format_duration(st.duration)}" for st in shape.stages)
        rate = f"from {shape.rate or 0:g}/s to {ramp}"
    else:
        rate = f"{shape.rate:g}/s"
    return f"{rate} ({shape.distribution}) with a pool of {shape.max_users} users"

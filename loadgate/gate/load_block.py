"""The ``load:`` block of a threshold file: defaults for ``loadgate run`` (users, durations, host, resources,
the task selection and the open-model arrival shape), every mistake with file:line and key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loadgate.gate import arrival, resources
from loadgate.gate.yaml_lines import FileErrors, LineMap, is_int, is_number, quote
from loadgate.units import parse_duration

_LOAD_KEYS = ("users", "spawn_rate", "duration", "warmup", "min_requests", "host", "resources", "select", "arrival")
SELECT_MODES = ("tasks", "journeys")  # load.select: tagged tasks only, or whole User classes


@dataclass(frozen=True)
class LoadDefaults:
    """The ``load:`` block: defaults for ``loadgate run`` (durations in seconds)."""

    users: int | None = None
    spawn_rate: float | None = None
    duration: float | None = None
    warmup: float | None = None
    min_requests: int | None = None
    host: str | None = None
    resources: resources.ResourceSettings | None = None
    select: str | None = None  # "tasks" (default) or "journeys"
    arrival: arrival.ArrivalShape | None = None  # open model: iterations started at a set rate


# Over the size/complexity limit (noqa): one validation branch per load key.
def parse_load(f: FileErrors, load: Any, line: int) -> LoadDefaults:  # noqa: C901, PLR0912
    if load is None:
        return LoadDefaults()
    if not isinstance(load, LineMap):
        raise f.error(line, "load", f"{quote(load)} is not a mapping", "keys " + ", ".join(_LOAD_KEYS))
    f.check_keys(load, "load", _LOAD_KEYS)
    values: dict[str, Any] = {}
    for key, raw in load.items():
        at, where = load.key_lines[key], f"load.{key}"
        if key in ("users", "min_requests"):
            if not is_int(raw) or raw < 1:
                raise f.error(at, where, f"{quote(raw)} is not a positive whole number", "a count like 1000")
            values[key] = raw
        elif key == "spawn_rate":
            if not is_number(raw) or raw <= 0:
                raise f.error(at, where, f"{quote(raw)} is not a positive number", "users started per second, like 100")
            values[key] = float(raw)
        elif key in ("duration", "warmup"):
            try:
                seconds = parse_duration(raw) if raw is not None and not isinstance(raw, (list, dict)) else None
            except ValueError:
                seconds = None
            if seconds is None or (key == "duration" and seconds <= 0):
                raise f.error(
                    at,
                    where,
                    f"{quote(raw)} is not a {'positive ' if key == 'duration' else ''}duration",
                    "a duration like 30s, 2m or 1h30m",
                )
            values[key] = seconds
        elif key == "resources":
            values[key] = resources.parse_settings(f, raw, at)
        elif key == "arrival":
            values[key] = arrival.parse(f, raw, at)
        elif key == "select":
            if raw not in SELECT_MODES:
                raise f.error(
                    at,
                    where,
                    f"{quote(raw)} is not a selection mode",
                    "tasks (only the tagged tasks run) or journeys (the User classes run whole)",
                )
            values[key] = raw
        else:
            if not isinstance(raw, str) or not re.match(r"^https?://[^\s/]+", raw):
                raise f.error(at, where, f"{quote(raw)} is not an HTTP URL", "a base URL like http://127.0.0.1:8089")
            values[key] = raw
    return LoadDefaults(**values)

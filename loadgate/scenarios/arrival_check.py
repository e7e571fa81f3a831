"""``loadgate check`` of the open-model shapes (``load.arrival``): refuse one that cannot work, before a run.

- a rate for a requirement that no scenario task is tagged with: every start would have nothing to run;
- a pool too small for the rate: by Little's law the users busy at once are rate x time per iteration,
  the time taken as the requirement's own highest latency target (what the file says an iteration may take).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from loadgate.gate.arrival import ArrivalShape
from loadgate.gate.thresholds import Threshold, ThresholdFile
from loadgate.scenarios.catalog import Catalog

_SOURCE = re.compile(r"^(?P<file>.+):(?P<line>\d+)$")


def _where(source: str, fallback: str) -> tuple[str, int | None]:
    """(file, line) of a ``file:line`` source."""
    m = _SOURCE.match(source)
    return (m["file"], int(m["line"])) if m else (fallback, None)


def _rate(shape: ArrivalShape) -> str:
    return f"{shape.peak:g}/s" + (" (the highest stage target)" if shape.stages else "")


def slowest_target(tf: ThresholdFile) -> Threshold | None:
    """The requirement's latency threshold with the highest target level (an upper bound in ms), or None."""
    timed = [
        t
        for t in tf.thresholds
        if t.unit == "ms" and t.regression is None and t.target is not None and t.target.op in ("<", "<=")
    ]
    return max(timed, key=lambda t: t.target.value if t.target else 0.0, default=None)


def pool_needed(shape: ArrivalShape, seconds: float) -> int:
    """Users busy at once at the shape's peak rate when each iteration takes ``seconds`` (Little's law)."""
    return math.ceil(shape.peak * seconds - 1e-9)


def arrival_problems(
    files: Mapping[str, ThresholdFile], catalog: Catalog, scenarios: str
) -> list[tuple[str, str, int | None]]:
    """(message, file, line) of each shape that cannot work."""
    out: list[tuple[str, str, int | None]] = []
    for req, tf in sorted(files.items()):
        shape = tf.load.arrival
        if shape is None:
            continue
        file, line = _where(shape.source, tf.path)
        if not catalog.tasks_for(req):
            out.append(
                (
                    f"load.arrival: a rate of {_rate(shape)} for {req}, but no task in {scenarios} is tagged "
                    f'@tag("{req}"), so every start would have nothing to run; tag the tasks that provide its '
                    "evidence, or remove load.arrival",
                    file,
                    line,
                )
            )
            continue
        slowest = slowest_target(tf)
        if shape.max_users is None or slowest is None or slowest.target is None:
            continue
        seconds = slowest.target.value / 1000
        needed = pool_needed(shape, seconds)
        if shape.max_users < needed:
            file, line = _where(shape.max_users_source, tf.path)
            out.append(
                (
                    f"load.arrival.max_users: {shape.max_users} users cannot start {_rate(shape)}: by Little's law "
                    f"the users busy at once are rate x time per iteration = {shape.peak:g}/s x {seconds:g} s = "
                    f"{needed}, taking as the time per iteration {req}'s highest latency target ({slowest.metric} "
                    f"{slowest.target.text} at {slowest.source}); the rest of the starts would be dropped. Raise "
                    f"max_users to at least {needed} or lower the rate",
                    file,
                    line,
                )
            )
    return out

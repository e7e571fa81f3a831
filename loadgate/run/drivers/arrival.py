"""``loadgate run`` with an open-model load (``load.arrival`` or ``--arrival-rate``): a pool of users spawned
up front, iterations started at a set rate inside Locust (:mod:`loadgate.plugin.arrival`), a start with no
free user dropped and counted. The CLI waits as for a headless run; the options are resolved in
:mod:`loadgate.run.arrival` (the pool is ``opts.users``, spawned at once)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from loadgate.gate.thresholds import ThresholdFile
from loadgate.run import arrival
from loadgate.run.drivers.base import Driver, Running
from loadgate.run.drivers.headless import Headless
from loadgate.run.options import RunOptions
from loadgate.run.record import RunRecord
from loadgate.shared.child import ChildConfig


class OpenModel(Headless):
    """Headless, with the pool for -u and the arrival shapes in child.json."""

    name = "arrival"

    @classmethod
    def for_run(cls, flags: Mapping, files: Mapping[str, ThresholdFile]) -> Driver | None:
        reqs = tuple(flags.get("requirements") or ())
        return cls(flags.get("prometheus")) if reqs and arrival.resolve(flags, files, reqs) else None

    def child_config(self, common: ChildConfig, opts: RunOptions, run_dir: str) -> ChildConfig:
        return replace(super().child_config(common, opts, run_dir), arrival=child_shapes(opts.arrival_shapes))

    def banner(self, session: Running) -> str | None:
        o = session.opts
        each = "; ".join(f"{r} {arrival.describe(s)}" for r, s in o.arrival_shapes)
        return (
            f"loadgate: running an open model: iterations start at a set rate, dropped when no user is free: "
            f"{each} ({o.duration:g}s, warmup {o.warmup:g}s) against {session.host}; writing {session.run_dir}"
        )

    def run_problems(self, rec: RunRecord, opts: RunOptions, recorder: dict) -> list[str]:
        """Headless's, and a schedule that never reported (the pool never spawned, a crash)."""
        problems = [*super().run_problems(rec, opts, recorder)]
        if rec.interrupted or rec.aborted:
            return problems
        blocks = recorder.get("arrival") or {}
        if not any(b.get("scheduled") for b in blocks.values()):
            problems.append(
                "the open-model schedule never started (no arrival counts reached the recorder): the pool "
                f"of {opts.users} users never finished spawning; see locust.log"
            )
        return problems


def child_shapes(shapes: arrival.Shapes) -> dict[str, dict[str, Any]]:
    """The shapes as child.json carries them to the Locust process(es)."""
    return {
        r: {
            "rate": s.rate,
            "stages": [[st.duration, st.target] for st in s.stages],
            "max_users": s.max_users,
            "distribution": s.distribution,
        }
        for r, s in shapes
    }

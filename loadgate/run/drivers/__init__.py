"""The ways a :class:`loadgate.run.session.Session` drives Locust, one module each, behind
:class:`loadgate.run.drivers.base.Driver`: ``headless`` (``loadgate run``), ``capacity`` (``loadgate
capacity``), ``ui`` (``loadgate run --ui``, a session in Locust's web UI whose tests are gated as they stop) and ``arrival``
(``loadgate run`` with an open-model load).

``loadgate run`` without ``--ui`` takes the first driver of :data:`RUN_DRIVERS` whose ``for_run`` answers
for its flags and threshold files. A new way to drive such a run is one module here and its line in
``RUN_DRIVERS``, before ``Headless``, which always answers.
"""

from __future__ import annotations

from typing import Mapping

from loadgate.gate.thresholds import ThresholdFile
from loadgate.run.drivers.arrival import OpenModel
from loadgate.run.drivers.base import Driver
from loadgate.run.drivers.headless import Headless

RUN_DRIVERS: tuple[type[Driver], ...] = (
    OpenModel,  # load.arrival or --arrival-rate: a pool, iterations started at a set rate
    Headless,  # -u/-r/--run-time: always
)


def run_driver(flags: Mapping, files: Mapping[str, ThresholdFile]) -> Driver:
    """The driver of a ``loadgate run`` (``flags``: its resolved flags, ``prometheus`` included)."""
    for cls in RUN_DRIVERS:
        driver = cls.for_run(flags, files)
        if driver is not None:
            return driver
    raise AssertionError("Headless answers for every run")

"""The statuses of a verdict and of its thresholds, how they rank, and the exit code of each.

``Status`` is a ``str``: it compares equal to its JSON text (``Status.FAIL == "fail"``), formats as it
(``f"{Status.FAIL}"`` is ``fail``) and is written to JSON as it, so files and messages read as before.
"""

from __future__ import annotations

from enum import Enum

from loadgate.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS


class Status(str, Enum):
    """A verdict's level (pass, warn, fail, inconclusive), or a threshold's (those and skipped)."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"  # a threshold only: not judged (no baseline yet, a capacity metric outside a search)

    def __str__(self) -> str:
        return self.value


STATUSES = tuple(Status)
# How bad a verdict level is: fail outranks inconclusive (the data may be untrustworthy, but what was
# measured already crossed an alert), which outranks warn. Skipped counts for nothing.
SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.INCONCLUSIVE: 2, Status.FAIL: 3}
_EXIT = {Status.PASS: EXIT_PASS, Status.WARN: EXIT_PASS, Status.INCONCLUSIVE: EXIT_INCONCLUSIVE, Status.FAIL: EXIT_FAIL}
# The order in which outputs made for reading list results when they cannot list them all: what needs
# attention first.
ATTENTION = {Status.FAIL: 0, Status.WARN: 1, Status.INCONCLUSIVE: 2, Status.SKIPPED: 3, Status.PASS: 4}


def exit_code(level: str) -> int:
    """The exit code of a verdict at ``level``: 0 pass (a warn passes), 1 fail, 3 inconclusive."""
    return _EXIT[Status(level)]


def worse(a: str, b: str) -> Status:
    """The worse of two verdict levels (neither may be skipped)."""
    sa, sb = Status(a), Status(b)
    return sa if SEVERITY[sa] >= SEVERITY[sb] else sb

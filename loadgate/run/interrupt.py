"""SIGINT and SIGTERM (Ctrl-C, a cancelled CI job) at every phase of a command.

While a run goes, a signal is a flag: the runner stops Locust and keeps what was recorded. After it
(saving the samples, analysis, gating, writing the outputs) a signal raises :class:`Interrupted` at once,
so that the command ends in exit 3 "interrupted" instead of dying by the signal half-way, and no file
is left claiming a verdict that was never final. Once the verdict files are being committed
(:meth:`Interrupt.final`), a signal is only noted: the work left takes milliseconds and ends consistent.
"""

from __future__ import annotations

import signal

from loadgate.errors import RunError


class Interrupted(RunError):
    """SIGINT/SIGTERM arrived before the verdict was final. ``run_dir`` and ``phase`` say where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_dir: str | None = None
        self.phase: str | None = None

    def __str__(self) -> str:
        where = f" while {self.phase}" if self.phase else ""
        if self.run_dir is None:
            return f"{self.reason}{where}"
        return (
            f"{self.reason}{where}: no verdict was reached; the samples recorded are kept in {self.run_dir}: "
            f"run 'loadgate gate {self.run_dir}' to analyse and gate them"
        )


class Interrupt:
    """Turns SIGINT/SIGTERM into a flag (``reason``), or with ``raising`` into :class:`Interrupted`.

    Nested uses restore the outer handlers on exit: a run's flag inside a command's raising guard. A
    raising guard that reached :meth:`final` leaves both signals ignored: it is for a CLI process, which
    ends right after.
    """

    def __init__(self, raising: bool = False) -> None:
        self.reason: str | None = None
        self.raising = raising
        self._old: dict = {}

    def __enter__(self) -> "Interrupt":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        self.reason = self.reason or f"interrupted by {signal.Signals(signum).name}"
        if self.raising:
            self.raising = False  # once: a second signal must not break the clean-up of the first
            raise Interrupted(self.reason)

    def final(self) -> None:
        """From now on the verdict is being committed: a signal is noted, no longer raised."""
        self.raising = False
        self._final = True

    def __exit__(self, *exc) -> None:
        # After a final verdict the CLI process only ends (its interpreter's shutdown takes some 0.3 s, with
        # Python's handlers gone): ignored, a signal there cannot turn exit 0 into 143 beside a sealed PASS.
        final = getattr(self, "_final", False) and exc[0] is None
        for sig, old in self._old.items():
            signal.signal(sig, signal.SIG_IGN if final else old)

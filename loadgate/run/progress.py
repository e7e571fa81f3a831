"""The live progress line during ``loadgate run``: redrawn in place on a TTY, a line every few seconds otherwise.

Reads the recorder's ``progress.json`` (written by the Locust process every two seconds).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable

from loadgate.data import rundir

NON_TTY_EVERY_S = 5.0


class Progress:
    def __init__(self, run_dir: str, opts, say: Callable[[str], None], stream=None) -> None:
        self.path = os.path.join(run_dir, rundir.PROGRESS)
        self.opts = opts
        self._say = say
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_print = 0.0
        self.last_t = None
        self.drawn = False

    def say(self, line: str) -> None:
        self._clear()
        self._say(line)

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False

    def line(self, snap: dict) -> str:
        o = self.opts
        total = o.ramp_up_s + o.duration
        phase = (
            "ramp-up"
            if not snap.get("ramp_up_done")
            else ("warmup" if snap["t"] - snap["ramp_up_done"] < o.warmup else "measuring")
        )
        p95 = "-" if snap.get("p95_ms") is None else f"{snap['p95_ms']:.0f}ms"
        err = "-" if snap.get("error_rate") is None else f"{snap['error_rate'] * 100:.2f}%"
        crossed = snap.get("crossed") or []
        tail = f" | omitted {snap['omitted']}" if snap.get("omitted") else ""
        tail += f" | dropped {snap['dropped']}" if snap.get("dropped") else ""
        tail += f" | ALERT: {'; '.join(crossed)}" if crossed else ""
        return (
            f"[{snap.get('elapsed', 0):5.0f}s/{total:.0f}s {phase}] users {snap.get('users', 0)}/{o.users}"
            f" | {snap.get('rps', 0):.0f} req/s | p95(10s) {p95} | errors {err}"
            f" | cpu {snap.get('cpu', 0):.0f}%{tail}"
        )

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last_print < (1.0 if self.tty else NON_TTY_EVERY_S):
            return
        try:
            with open(self.path) as f:
                snap = json.load(f)
        except (OSError, ValueError):
            return
        if snap.get("t") == self.last_t and not self.tty:
            return
        self.last_t, self.last_print = snap.get("t"), now
        text = self.line(snap)
        if self.tty:
            width = os.get_terminal_size(self.stream.fileno()).columns if self.stream.isatty() else 120
            self.stream.write("\r\033[K" + text[: max(20, width - 1)])
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        self._clear()

"""Requests still in flight when the run stops: recorded as failed samples, never lost.

Locust fires its request event when a response (or an error) comes back. A request the target never
answers is still waiting when the run stops; Locust then kills its user (at once, or after
``--stop-timeout``) and the event never fires: without this module such a request leaves no trace, and
a target that never answers some of its users reads as a fast one.

- Each User class's ``on_stop`` is wrapped when the test starts (nothing runs per request). Locust calls it
  in the user's own greenlet while it handles the ``GreenletExit`` that killed the user; that exception's
  traceback still holds the frame of the client call that was waiting (``HttpUser``'s or
  ``FastHttpUser``'s ``client.request``), with the request's method, name, URL and start time.
- From there the request event is fired as Locust would have fired it: failed, with the exception
  :data:`MESSAGE` and the time it waited as its response time. Locust's own statistics count it, and the
  recorder's listener packs its row in the user's greenlet as any other: the user's number, its task's
  requirement (read from the task wrapper's frame in the same traceback) and, for a paced user, the slots
  its iteration missed (:meth:`loadgate.pacing.UserState.unanswered`).
- A request sent before the analysis window (ramp-up, warmup) and still unanswered when the run stopped
  was outstanding through the whole window: its row is recorded from the window's start (ramp-up done,
  or the test's start, plus ``--loadgate-warmup``), its response time the time it waited from there.
- Requests of other clients (a custom client firing the event itself) are not seen.

The count per request goes to ``recorder.json`` (``unanswered``); a worker sends its count to the master
before it confirms its last batch. Requests sent after the stop began (Locust decides to kill a waiting
user, and the kill lands after it woke and sent its next request) are recorded too, after the window,
and counted apart (``sent_while_stopping``).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

from gevent import GreenletExit
from greenlet import getcurrent
from locust.exception import RPCError, RPCSendError
from locust.runners import WorkerRunner

from loadgate.plugin.attribution import code_in, current
from loadgate.plugin.compat import client_codes, interrupted_call
from loadgate.pacing import state_of

log = logging.getLogger("loadgate.plugin.inflight")

MESSAGE = "no response before the run stopped"
MSG_UNANSWERED = "loadgate_unanswered"


class NoResponse(Exception):
    """The exception of a request that had no response when the run stopped (shown as :data:`MESSAGE`)."""

    def __repr__(self) -> str:
        return MESSAGE

    __str__ = __repr__


class InFlight:
    """Records the requests each user was waiting on when it was stopped; counts them in the recorder's meta."""

    def __init__(self, environment, recorder) -> None:
        self.env = environment
        self.recorder = recorder  # its meta (a new one each test of a UI session) gets "unanswered"
        self.codes = client_codes()
        self.started: float | None = None
        self.ramped: float | None = None
        self.stopping: float | None = None
        self.counts: Counter[str] = Counter()  # "METHOD name" -> requests sent before the stop began
        self.cut_off = 0  # requests sent while the users were stopping, killed in flight (after the window)
        self.is_worker = isinstance(environment.runner, WorkerRunner)

    # --- events -----------------------------------------------------------------------------
    def on_test_start(self, environment, **_kw) -> None:
        self.started, self.ramped, self.stopping = time.time(), None, None
        for user_class in environment.runner.user_classes:
            user_class.on_stop = self._watched(user_class.on_stop)

    def on_test_stopping(self, **_kw) -> None:
        self.stopping = self.stopping or time.time()

    def on_spawning_complete(self, **_kw) -> None:
        self.ramped = self.ramped or time.time()

    def on_test_stop(self, environment, **_kw) -> None:
        """Every user is stopped by now: this test's count to the recorder's meta (a worker: to the master, before
        the recorder's own last message)."""
        (counts, self.counts), (cut_off, self.cut_off) = (self.counts, Counter()), (self.cut_off, 0)
        if not counts and not cut_off:
            return
        log.info(
            "loadgate: %d requests had no response when the run stopped (%d more sent while stopping)",
            sum(counts.values()),
            cut_off,
        )
        if self.is_worker:
            try:
                environment.runner.send_message(MSG_UNANSWERED, {"counts": dict(counts), "cut_off": cut_off})
            except (RPCError, RPCSendError) as e:  # the rows themselves go with the recorder's batches
                log.warning("loadgate: could not send the count of unanswered requests to the master (%s)", e)
        else:
            self.add(counts, cut_off)

    def on_message(self, environment, msg, **_kw) -> None:
        """Master: a worker's count."""
        self.add(Counter(msg.data.get("counts") or {}), int(msg.data.get("cut_off") or 0))

    def add(self, counts: Counter, cut_off: int) -> None:
        meta = self.recorder.meta
        seen = meta.get("unanswered") or {"requests": 0, "by_request": {}, "sent_while_stopping": 0}
        by_request = Counter(seen["by_request"])
        by_request.update(counts)
        meta["unanswered"] = {
            "requests": sum(by_request.values()),
            "by_request": dict(by_request),
            "sent_while_stopping": seen["sent_while_stopping"] + cut_off,
        }

    # --- the user's side --------------------------------------------------------------------
    def window_start(self) -> float | None:
        """Where the analysis window starts: the recorder's ramp-up done or start (local, master), else this
        process's, plus the warmup."""
        meta = self.recorder.meta
        base = meta.get("ramp_up_done") or self.ramped or meta.get("start") or self.started
        # (read now: a remote worker learns it from the master's spawn message, after init)
        warmup = float(getattr(self.env.parsed_options, "loadgate_warmup", None) or 0.0)
        return None if base is None else base + warmup

    def _watched(self, on_stop):
        if getattr(on_stop, "_loadgate_in_flight", False):
            return on_stop

        @functools.wraps(on_stop)
        def wrapper(user, *args, **kwargs):
            exc = sys.exc_info()[1]
            if isinstance(exc, GreenletExit):
                try:
                    self.record(user, exc)
                except Exception:  # noqa: BLE001 - the user's own on_stop must still run
                    log.exception("loadgate: recording a request in flight at stop failed")
            return on_stop(user, *args, **kwargs)

        wrapper._loadgate_in_flight = True  # type: ignore[attr-defined]
        return wrapper

    def record(self, user, exc: BaseException) -> None:
        """If ``exc`` (the GreenletExit that stopped ``user``, in its greenlet) interrupted a client call,
        fire the request event for it as a failed request."""
        frames, local = interrupted_call(exc, self.codes)
        if local is None:
            return
        start = local.get("start_time")
        if not isinstance(start, (int, float)):  # killed before the request was sent
            return
        now = time.time()
        method = local.get("method")
        method = method.decode("ascii", "replace") if isinstance(method, bytes) else str(method or "")
        url = local.get("url")
        name = local.get("name") or _path(url)
        window = self.window_start()
        before = window is not None and start < window < now
        since = window if before else float(start)
        g = getcurrent()
        state = state_of(g, user)
        if state.anchor is not None:  # a paced user inside its schedule: the slots it missed
            state.unanswered(since, now, before)
        code = code_in(frames)
        if code is not None:
            current[g] = code
        try:
            self.env.events.request.fire(
                request_type=method,
                name=name,
                response_time=(now - since) * 1000.0,
                response_length=0,
                response=None,
                context=local.get("context") or {},
                exception=NoResponse(MESSAGE),
                start_time=since,
                url=url,
            )
        finally:
            if code is not None:
                current.pop(g, None)
        if self.stopping is not None and start > self.stopping:  # Locust's stop raced the user's next request
            self.cut_off += 1
        else:
            self.counts[f"{method} {name}"] += 1


def _path(url) -> str:
    """What Locust names a request given no name: its path (and query) for an absolute URL."""
    text = url.decode("utf-8", "replace") if isinstance(url, bytes) else str(url or "")
    parts = urlsplit(text)
    if not parts.scheme:
        return text
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

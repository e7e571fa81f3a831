"""Master side of a distributed run: which workers went missing, and when they were last heard from.

Locust marks a worker missing only after its heartbeat countdown ran out (some seconds after the
worker died), so the time a loss is noticed is not the time the worker stopped: the report names the
last time the master heard from it (a batch of samples, or a heartbeat that reset its countdown).
"""

from __future__ import annotations

import logging

from loadgate.plugin.compat import HEARTBEAT_TOP, worker_clients

log = logging.getLogger("loadgate.plugin.recorder")


def check_workers(rec, now: float) -> None:
    """Note in ``rec`` (the master's recorder) workers that went missing before confirming their last batch."""
    clients = worker_clients(rec.runner)
    for c in clients:
        rec.known_workers.setdefault(c.id, now)
        beat, heard = rec.heard.get(c.id, (c.heartbeat, now))
        # Locust resets the countdown to its top at each heartbeat heard and lowers it each second: at the top
        # or risen since the last look, the worker was heard within the last second
        if c.state != "missing" and (c.heartbeat > beat or c.heartbeat >= HEARTBEAT_TOP):
            heard = now
        rec.heard[c.id] = (c.heartbeat, heard)
    current = {c.id: c.state for c in clients}
    for wid in rec.known_workers:
        if wid in rec.lost_workers or wid in rec.worker_sent or current.get(wid, "missing") != "missing":
            continue
        started = rec.meta["start"] or now
        heard = rec.heard.get(wid, (0, rec.known_workers[wid]))[1]
        rec.lost_workers[wid] = {
            "at": heard,
            "after_s": round(heard - started, 1),
            "noticed_after_s": round(now - started, 1),
            "delivered": rec.received.get(wid, 0),
        }
        log.warning(
            "loadgate: worker %s lost: last heard from %.0fs into the run (noticed at %.0fs), after "
            "delivering %d samples",
            wid,
            heard - started,
            now - started,
            rec.received.get(wid, 0),
        )


def heard_from(rec, wid: str, now: float) -> None:
    """A batch arrived from ``wid``: heard from now."""
    beat = rec.heard.get(wid, (0, now))[0]
    rec.heard[wid] = (beat, now)

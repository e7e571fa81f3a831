"""The embedded demo target: a real HTTP server (gevent's WSGI server) on loopback.

Endpoints behave like a small shop API with realistic latency (log-normal with a slow tail) and a
small error rate, so that a gated run has something real to measure:

    GET  /health                      ~0 ms
    GET  /api/users/<id>              median ~20 ms
    GET  /api/products                median ~35 ms
    GET  /api/search?q=…              median ~50 ms, heavier tail
    POST /api/orders                  median ~45 ms, ~0.02 % HTTP 500
    GET  /api/delay/<ms>              sleeps exactly <ms> (capped at 30 s), for tests
    GET  /api/status/<code>           answers with that status, for tests
    GET  /api/flaky?p=0.3             HTTP 500 with probability p, for tests
    GET  /api/echo?text=…             echoes text back in a 500 body (hostile-string tests)
    GET  /api/bytes/<n>               n bytes of body (capped at 16 MiB)
    GET  /api/limited/<slots>/<ms>    at most <slots> requests served at once, each for <ms> (times the
                                      latency scale); the rest queue: a known capacity of
                                      slots * 1000 / (ms * scale) requests/s, for tests

``latency_scale`` multiplies every simulated latency (a slower build, for regression tests).
Only loopback addresses are accepted unless ``allow_remote`` is set.
"""

from __future__ import annotations

import json
import math
import random
import sys
from typing import Callable, Iterable
from urllib.parse import parse_qs

from loadgate.errors import ConfigError
from loadgate.shared.child import stop_with_parent

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# (median ms, sigma of the log-normal, error probability)
_PROFILES = {
    "users": (20.0, 0.45, 0.0),
    "products": (35.0, 0.45, 0.0),
    "search": (50.0, 0.6, 0.0),
    "orders": (45.0, 0.5, 0.0002),
}
_MAX_DELAY_S = 30.0
_MAX_BYTES = 16 * 1024 * 1024

Start = Callable[[str, list], None]


def _latency(profile: str, scale: float, rng: random.Random) -> float:
    median, sigma, _ = _PROFILES[profile]
    return rng.lognormvariate(math.log(median), sigma) * scale / 1000.0


# Over the size/complexity limit (noqa): the demo server's routes, counted with the nested app.
def make_app(latency_scale: float = 1.0, seed: int | None = None) -> Callable:  # noqa: C901
    """The WSGI application; each request sleeps cooperatively (gevent) for its simulated latency."""
    import gevent
    import gevent.event
    import gevent.lock

    rng = random.Random(seed)

    def respond(start: Start, status: str, body: bytes, ctype: str = "application/json") -> list[bytes]:
        start(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def ok(start: Start, payload: object) -> list[bytes]:
        return respond(start, "200 OK", json.dumps(payload).encode())

    def error(start: Start, message: str) -> list[bytes]:
        return respond(start, "500 Internal Server Error", json.dumps({"error": message}).encode())

    slots: dict[int, gevent.lock.Semaphore] = {}  # /api/limited: one shared semaphore per slot count

    def limited(start: Start, n: int, ms: float) -> list[bytes]:
        gate = slots.setdefault(n, gevent.lock.Semaphore(n))
        with gate:  # waiting here is the queue of a saturated server
            gevent.sleep(min(_MAX_DELAY_S, ms * latency_scale / 1000.0))
        return ok(start, {"slots": n, "ms": ms})

    products_body = json.dumps([{"id": i, "price": 10 + i} for i in range(20)]).encode()
    hits = [{"id": i} for i in range(10)]

    # Over the size/complexity limit (noqa): one branch per demo route.
    def app(environ: dict, start: Start) -> Iterable[bytes]:  # noqa: C901, PLR0912
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        parts = [p for p in path.split("/") if p]
        if path == "/health":
            return ok(start, {"status": "ok"})
        if parts[:1] != ["api"] or len(parts) < 2:
            return respond(start, "404 Not Found", b'{"error": "not found"}')
        kind = parts[1]
        if kind in _PROFILES and (kind != "orders" or method == "POST"):
            gevent.sleep(_latency(kind, latency_scale, rng))
            if rng.random() < _PROFILES[kind][2]:
                return error(start, "simulated failure")
            if kind == "users" and len(parts) == 3:
                return ok(start, {"id": parts[2], "name": f"user {parts[2]}"})
            if kind == "products":  # a pre-rendered body: the target should spend its CPU on serving
                return respond(start, "200 OK", products_body)
            if kind == "search":
                q = query.get("q", [""])[0]
                return ok(start, {"q": q, "hits": hits})
            if kind == "orders":
                environ["wsgi.input"].read()
                return respond(start, "201 Created", b'{"order": "accepted"}')
        if kind == "delay" and len(parts) == 3:
            gevent.sleep(min(_MAX_DELAY_S, max(0.0, float(parts[2]) / 1000.0)))
            return ok(start, {"slept_ms": float(parts[2])})
        if kind == "limited" and len(parts) == 4 and parts[2].isdigit() and 0 < int(parts[2]) <= 10_000:
            try:
                return limited(start, int(parts[2]), max(0.0, float(parts[3])))
            except ValueError:
                return respond(start, "404 Not Found", b'{"error": "expected /api/limited/<slots>/<ms>"}')
        if kind == "status" and len(parts) == 3 and parts[2].isdigit():
            code = int(parts[2])
            return respond(start, f"{code} Status {code}", json.dumps({"status": code}).encode())
        if kind == "flaky":
            p = float(query.get("p", ["0.3"])[0])
            gevent.sleep(_latency("users", latency_scale, rng))
            return error(start, "flaky failure") if rng.random() < p else ok(start, {"ok": True})
        if kind == "echo":
            text = query.get("text", [""])[0]
            return respond(start, "500 Internal Server Error", text.encode(), "text/html")
        if kind == "bytes" and len(parts) == 3 and parts[2].isdigit():
            return respond(start, "200 OK", b"x" * min(_MAX_BYTES, int(parts[2])), "application/octet-stream")
        return respond(start, "404 Not Found", b'{"error": "not found"}')

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency_scale: float = 1.0,
    allow_remote: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the demo target until SIGINT/SIGTERM; ``announce`` gets the URL once listening."""
    if host not in LOOPBACK and not allow_remote:
        raise ConfigError(f"--host {host}: the demo target listens on loopback only; use 127.0.0.1, localhost or ::1")
    if latency_scale <= 0:
        raise ConfigError(f"--latency-scale {latency_scale}: expected a number > 0")
    import signal

    import gevent
    import gevent.event
    from gevent.pywsgi import WSGIServer

    bind_host = "127.0.0.1" if host == "localhost" else host
    server = WSGIServer((bind_host, port), make_app(latency_scale), log=None, error_log=None)
    try:
        server.start()
    except OSError as e:
        raise ConfigError(
            f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); choose another port or 0 for a free one"
        ) from None
    real_port = server.server_port
    url = f"http://[{bind_host}]:{real_port}" if ":" in bind_host else f"http://{bind_host}:{real_port}"
    (announce or (lambda u: print(f"loadgate target listening on {u}", flush=True)))(url)
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop_with_parent()  # started by a run: never outlive it
    stop.wait()
    server.stop(timeout=1)
    print("loadgate target stopped", file=sys.stderr, flush=True)

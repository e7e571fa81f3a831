"""A counting HTTP target on 127.0.0.1 for the open-model tests: it notes when each request arrived.

    GET /fast            answers at once
    GET /slow/<ms>       answers after <ms> milliseconds (capped at 5 s)

Run in a thread of the test (``with CountingTarget() as t: ... t.arrivals``), or as a process
(``python arrival_target.py``: prints its URL, then on SIGTERM the arrivals as JSON lines on stdout).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CountingTarget:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (epoch seconds, path) of every request, in arrival order
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with target.lock:
                    target.arrivals.append((time.time(), self.path))
                if self.path.startswith("/slow/"):
                    time.sleep(min(5.0, float(self.path.rsplit("/", 1)[1]) / 1000.0))
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CountingTarget":
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def times(self, prefix: str = "/") -> list[float]:
        with self.lock:
            return [t for t, path in self.arrivals if path.startswith(prefix)]


if __name__ == "__main__":
    with CountingTarget() as served:
        print(served.url, flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_a: stop.set())
        stop.wait(600)  # bounded: a target left behind stops by itself
        json.dump(served.times(), sys.stdout)

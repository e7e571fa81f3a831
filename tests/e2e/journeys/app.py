"""A small real WSGI shop for the journey tests, served by werkzeug on loopback; it counts every request it answers."""
from __future__ import annotations

import collections
import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log(self, *_args) -> None:  # thousands of requests: the counts say it all
        pass


class Shop:
    """WSGI app: /, /login, /products/<id>, /cart, /pay; ``counts`` is what the server saw, per path."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        key = "/products/[id]" if path.startswith("/products/") else path
        known = key in ("/", "/login", "/products/[id]", "/cart", "/pay")
        with self.lock:
            self.counts[f"{environ['REQUEST_METHOD']} {key}"] += 1
        if environ["REQUEST_METHOD"] == "POST":
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK" if known else "404 Not Found", [("Content-Type", "text/plain")])
        return [b"ok" if known else b"no such page"]


class Server:
    """``with Server() as s:`` serves a fresh Shop on 127.0.0.1 (free port) in a thread; ``s.url``, ``s.app.counts``."""

    def __enter__(self) -> "Server":
        self.app = Shop()
        self.httpd = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.thread.join(10)


if __name__ == "__main__":  # by hand: python tests/e2e/journeys/app.py
    import time

    with Server() as s:
        print(s.url, flush=True)
        try:
            while True:
                time.sleep(5)
                print(dict(s.app.counts), flush=True)
        except KeyboardInterrupt:
            pass

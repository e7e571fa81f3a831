"""Locustfile for ``bench/recorder_overhead.py``: FastHttpUsers with no wait, fetching one small static file.

The same file serves plain Locust (``locust -f bench/nginx_locustfile.py``) and ``loadgate run`` (its
task carries the requirement tag the bench's threshold file names), so both sides run one scenario.
"""

from __future__ import annotations

from locust import FastHttpUser, tag, task

REQUIREMENT = "REQ-BENCH-001"


class StaticFile(FastHttpUser):
    # No wait_time: Locust's default, constant(0), starts the next request as soon as one ends.

    @tag(REQUIREMENT)
    @task
    def page(self) -> None:
        self.client.get("/index.html")

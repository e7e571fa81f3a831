"""Scenarios of the open-model tests: one request per iteration to the counting target."""
from locust import FastHttpUser, constant, tag, task


class Api(FastHttpUser):
    """A closed-model wait time: an open-model run replaces it with its pool's wait for a start."""

    wait_time = constant(1)

    @tag("REQ-ARR-FAST")
    @task
    def fast(self):
        self.client.get("/fast", name="/fast")

    @tag("REQ-ARR-SLOW")
    @task
    def slow(self):
        self.client.get("/slow/200", name="/slow/200")

"""Scenarios for targets that never answer some (or all) of their connections: one request an iteration."""
from locust import FastHttpUser, HttpUser, constant, constant_throughput, tag, task


class PacedHang(FastHttpUser):
    """Ten iterations a second per user (its schedule is recorded)."""

    wait_time = constant_throughput(10)

    @tag("REQ-HANG-PACED")
    @task
    def item(self):
        self.client.get("/item", name="/item")


class UnpacedHang(FastHttpUser):
    """A fixed think time: no schedule."""

    wait_time = constant(0.1)

    @tag("REQ-HANG-UNPACED")
    @task
    def item(self):
        self.client.get("/item", name="/item")


class HttpHang(HttpUser):
    """Locust's requests-based client, paced, its request named by its URL."""

    wait_time = constant_throughput(10)

    @tag("REQ-HANG-HTTP")
    @task
    def item(self):
        self.client.get("/item?id=5")

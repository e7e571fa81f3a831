"""Test scenarios: one requirement per gate path, run for a few seconds against the demo target."""
from locust import FastHttpUser, constant, tag, task


class FastUser(FastHttpUser):
    wait_time = constant(0.05)

    @tag("REQ-T-PASS", "REQ-T-WARN", "REQ-T-INCONCLUSIVE", "REQ-T-DOWN")
    @task(3)
    def products(self):
        self.client.get("/api/products")

    @tag("REQ-T-PASS", "REQ-T-WARN", "REQ-T-DOWN")
    @task(1)
    def user(self):
        self.client.get("/api/users/7", name="/api/users/[id]")

    def on_start(self):
        self.client.get("/health")


class BrokenUser(FastHttpUser):
    wait_time = constant(0.05)

    @tag("REQ-T-FAIL")
    @task
    def broken(self):
        self.client.get("/api/status/503", name="/api/status/[code]")

    @tag("REQ-T-FAIL")
    @task
    def fine(self):
        self.client.get("/api/products")

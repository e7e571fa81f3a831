"""The scenario of the docs' examples: paced shoppers against the embedded demo target's endpoints."""
import random

from locust import FastHttpUser, constant_throughput, tag, task


class Shopper(FastHttpUser):
    wait_time = constant_throughput(1.2)

    @tag("REQ-SHOP-001")
    @task(5)
    def view_user(self):
        self.client.get(f"/api/users/{random.randint(1, 100_000)}", name="/api/users/[id]")

    @tag("REQ-SHOP-001")
    @task(1)
    def place_order(self):
        self.client.post("/api/orders", json={"product": random.randint(1, 20), "qty": 1})

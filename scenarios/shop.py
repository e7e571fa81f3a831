"""Shop API scenarios against the embedded demo target (or any host with the same endpoints).

Each task carries the requirement it provides evidence for with Locust's own @tag.
"""
import random

from locust import FastHttpUser, between, constant_throughput, tag, task


class Shopper(FastHttpUser):
    """REQ-PERF-001: 1000 concurrent shoppers, each about 1.2 requests per second."""

    wait_time = constant_throughput(1.2)

    @tag("REQ-PERF-001")
    @task(5)
    def view_user(self):
        self.client.get(f"/api/users/{random.randint(1, 100_000)}", name="/api/users/[id]")

    @tag("REQ-PERF-001")
    @task(3)
    def list_products(self):
        self.client.get("/api/products")

    @tag("REQ-PERF-001")
    @task(2)
    def search(self):
        self.client.get(f"/api/search?q={random.choice(['lamp', 'desk', 'chair', 'mug'])}",
                        name="/api/search?q=[term]")

    @tag("REQ-PERF-001")
    @task(1)
    def place_order(self):
        self.client.post("/api/orders", json={"product": random.randint(1, 20), "qty": 1})


class CatalogueBrowser(FastHttpUser):
    """REQ-DEMO-001: a quick 30-second look at catalogue browsing."""

    wait_time = between(0.2, 0.5)

    @tag("REQ-DEMO-001")
    @task(3)
    def list_products(self):
        self.client.get("/api/products")

    @tag("REQ-DEMO-001")
    @task(1)
    def search(self):
        self.client.get(f"/api/search?q={random.choice(['lamp', 'desk'])}", name="/api/search?q=[term]")

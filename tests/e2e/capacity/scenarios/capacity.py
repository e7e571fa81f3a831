"""Users of known load against servers of known capacity, for ``loadgate capacity`` tests."""
import time

from locust import FastHttpUser, constant, constant_throughput, tag, task


class Paced(FastHttpUser):
    """One request a second to a server of 10 slots of 100 ms: 100 req/s, so about 100 users."""

    wait_time = constant_throughput(1)

    @tag("REQ-CAP-001")
    @task
    def limited(self):
        self.client.get("/api/limited/10/100", name="/api/limited/10/100")

    @tag("REQ-CAP-002")
    @task
    def roomy(self):  # 1000 slots: never the limit below a few hundred users
        self.client.get("/api/limited/1000/20", name="/api/limited/1000/20")


class Burner(FastHttpUser):
    """Spends 50 ms of CPU per iteration in the load generator itself, ten iterations a second per user:
    from two users on, the generator (not the target) is the bottleneck."""

    wait_time = constant_throughput(10)

    @tag("REQ-CAP-003")
    @task
    def burn(self):
        until = time.process_time() + 0.05
        while time.process_time() < until:
            pass
        self.client.get("/health")


class Planned(FastHttpUser):
    """One request a second to a server of 5 slots of 100 ms (times the demo target's latency scale):
    50 req/s, so about 50 users at scale 1 and 16 at scale 3. For the capacity plan's test."""

    wait_time = constant_throughput(1)

    @tag("REQ-CAP-004")
    @task
    def planned(self):
        self.client.get("/api/limited/5/100", name="/api/limited/5/100")


class Offered(FastHttpUser):
    """For ``loadgate capacity --arrival-rate``: a pool whose iterations start at each step's rate (the open
    model replaces this wait time). REQ-CAP-005: a server of 7 slots of 200 ms, 35 requests/s; above it the
    queue, and the latency, grow without bound. REQ-CAP-006: 200 ms with room for all, so a pool of 4 users
    starts at most 20 iterations a second and drops the rest."""

    wait_time = constant(1)

    @tag("REQ-CAP-005")
    @task
    def slots(self):
        self.client.get("/api/limited/7/200", name="/api/limited/7/200")

    @tag("REQ-CAP-006")
    @task
    def slow(self):
        self.client.get("/api/limited/1000/200", name="/api/limited/1000/200")

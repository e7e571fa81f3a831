"""Scenarios for latency from the schedule: the same 2 ms request, from paced and from unpaced users."""
from locust import FastHttpUser, constant, constant_throughput, tag, task


class Paced(FastHttpUser):
    """Ten iterations a second per user, Locust's own constant_throughput (loadgate records its schedule)."""

    wait_time = constant_throughput(10)

    @tag("REQ-CO-PACED")
    @task
    def quick(self):
        self.client.get("/api/delay/2", name="/api/delay/2")


class Unpaced(FastHttpUser):
    """A fixed think time: no schedule, so a stall can only be seen in the users' own cadence."""

    wait_time = constant(0.1)

    @tag("REQ-CO-UNPACED")
    @task
    def quick(self):
        self.client.get("/api/delay/2", name="/api/delay/2")


class Overpaced(FastHttpUser):
    """A pacing period (20 ms) shorter than every iteration (60 ms): the schedule can never be met."""

    wait_time = constant_throughput(50)

    @tag("REQ-CO-OVERPACED")
    @task
    def slow(self):
        self.client.get("/api/delay/60", name="/api/delay/60")


class Crowd(FastHttpUser):
    """Forty users paced at two iterations a second: spawned in one batch, spread over their period by
    loadgate's random phases, until a stall releases them all at once."""

    wait_time = constant_throughput(2)

    @tag("REQ-CO-CROWD")
    @task
    def quick(self):
        self.client.get("/api/delay/2", name="/api/delay/2")

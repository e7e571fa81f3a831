"""Scenarios that exercise the trust features: secrets, abort, interruption, crashes, saturation."""
import os
import time

from locust import FastHttpUser, constant, constant_throughput, tag, task


class SecretUser(FastHttpUser):
    wait_time = constant(0.1)

    @tag("REQ-T-SECRET")
    @task
    def with_token(self):
        self.client.get("/api/products?token=SECRET123&q=lamp", headers={"Authorization": "Bearer SECRET456"})

    @tag("REQ-T-SECRET")
    @task
    def failing_with_key(self):
        self.client.get("/api/status/500?api_key=SECRET789")


class BrokenUser(FastHttpUser):
    wait_time = constant(0.05)

    @tag("REQ-T-ABORT")
    @task
    def broken(self):
        self.client.get("/api/status/503", name="/api/status/[code]")


class SteadyUser(FastHttpUser):
    wait_time = constant(0.1)

    @tag("REQ-T-LONG")
    @task
    def products(self):
        self.client.get("/api/products")


class CrashingUser(FastHttpUser):
    wait_time = constant(0.02)
    done = 0

    @tag("REQ-T-CRASH")
    @task
    def products(self):
        self.client.get("/api/products")
        CrashingUser.done += 1
        if CrashingUser.done == 150:  # a hard crash of the load generator, no clean shutdown
            os._exit(7)


class BurningUser(FastHttpUser):
    """Asks for 50 ms of the generator's own CPU per iteration, ten iterations a second per user: four
    users need two cores' worth of one process. Alone on the machine, the process runs above 90% of a
    core; starved by neighbours (a busy CI host), it cannot keep the pace and starts iterations late."""

    wait_time = constant_throughput(10)

    @tag("REQ-T-BURN")
    @task
    def burn(self):
        end = time.process_time() + 0.05
        while time.process_time() < end:  # CPU time, not wall time: the generator itself is the bottleneck
            pass
        self.client.get("/health")


class FailingStartUser(FastHttpUser):
    wait_time = constant(0.1)

    def on_start(self):
        raise RuntimeError("login service unavailable")

    @tag("REQ-T-ONSTART")
    @task
    def products(self):
        self.client.get("/api/products")


class HangingTargetUser(FastHttpUser):
    wait_time = constant(0.1)
    network_timeout = 0.5
    connection_timeout = 0.5

    @tag("REQ-T-HANG")
    @task
    def slow(self):
        self.client.get("/api/delay/5000", name="/api/delay/[ms]")


class BigBodyUser(FastHttpUser):
    wait_time = constant(0.2)

    @tag("REQ-T-BIG")
    @task
    def big(self):
        self.client.get("/api/bytes/10000000", name="/api/bytes/[n]")

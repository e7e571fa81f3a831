"""A shop journey as Locust users write them: a Browse TaskSet left by an untagged task that calls
interrupt(), a Checkout SequentialTaskSet tagged as a whole, and a login in on_start."""
import random

from locust import HttpUser, SequentialTaskSet, TaskSet, constant_throughput, tag, task


class Browse(TaskSet):
    @tag("REQ-SHOP-BROWSE")
    @task(4)
    def product(self):
        self.client.get(f"/products/{random.randint(1, 50)}", name="/products/[id]")

    @task(1)
    def leave(self):           # untagged: dropped by select: tasks, kept by select: journeys
        self.interrupt()


@tag("REQ-SHOP-CHECKOUT")
class Checkout(SequentialTaskSet):
    @task
    def add_to_cart(self):
        self.client.post("/cart", data={"product": random.randint(1, 50)})

    @task
    def pay(self):
        self.client.post("/pay")

    @task
    def done(self):
        self.interrupt()


class Shopper(HttpUser):
    wait_time = constant_throughput(2)
    tasks = {Browse: 3, Checkout: 1}

    def on_start(self):
        self.client.post("/login", data={"user": "alice"})

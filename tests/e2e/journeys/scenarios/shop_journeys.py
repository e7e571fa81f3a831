"""A shop journey written the way Locust users write them: a login in on_start, a Browse
TaskSet left by an untagged ``leave`` task calling ``self.interrupt()``, a Checkout SequentialTaskSet
tagged as a whole, and untagged navigation to the home page."""
import random

from locust import HttpUser, SequentialTaskSet, TaskSet, constant, tag, task


class Browse(TaskSet):
    @tag("REQ-JRN-BROWSE")
    @task(4)
    def product(self):
        self.client.get(f"/products/{random.randint(1, 50)}", name="/products/[id]")

    @task(1)
    def leave(self):
        self.interrupt()


@tag("REQ-JRN-CHECKOUT")
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
    wait_time = constant(0.05)
    tasks = {Browse: 3, Checkout: 1}

    def on_start(self):
        self.client.post("/login", data={"user": "alice"})

    @task(1)
    def home(self):
        self.client.get("/")

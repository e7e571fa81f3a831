from locust import HttpUser, tag, task

CONFIG = {"users": 10}
BASE = CONFIG["host"]  # KeyError at import


class U(HttpUser):
    @tag("REQ-T-PASS")
    @task
    def t(self):
        self.client.get("/")

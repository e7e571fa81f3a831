"""Request names and server error messages built to break out of HTML, attributes, scripts and comments.

The demo target's /api/echo answers 500 with the text as its body; the failure message is that body,
so every message in the report comes from the server, as it would from a hostile or broken system.
"""
import random

from locust import FastHttpUser, constant, tag, task

MESSAGES = ["<script>alert(1)</script>", "\"'><img src=x onerror=alert(1)>", "</script><!--",
            "&lt;already escaped&gt; & <b>bold</b>"]


class Hostile(FastHttpUser):
    wait_time = constant(0.05)

    @tag("REQ-HOSTILE-001")
    @task(3)
    def markup_name(self):
        self.client.get("/api/products", name="/api/products?<script>alert(1)</script>")

    @tag("REQ-HOSTILE-001")
    @task(1)
    def attribute_name(self):
        with self.client.get("/api/echo", params={"text": random.choice(MESSAGES)}, catch_response=True,
                             name="/api/echo \"'><img src=x onerror=alert(1)>") as response:
            response.failure(response.text)

    @tag("REQ-HOSTILE-001")
    @task(1)
    def script_end_name(self):
        with self.client.get("/api/echo", params={"text": "</script><!--"}, catch_response=True,
                             name="</script><!--") as response:
            response.failure(response.text + " line\u2028separator\u2029</script><script>alert(2)</script>")

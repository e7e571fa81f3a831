"""Locustfile that loads the loadgate recorder: ``locust -f scenario.py,<this file>``.

It defines no User class; importing it registers the recorder with Locust's event hooks (the open
model's pool first: it sets up the User classes before the recorder reads them).
"""

from loadgate.plugin import arrival
from loadgate.plugin.hooks import install

arrival.install()
install()

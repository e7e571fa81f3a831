"""Locustfile that loads the loadgate recorder: ``locust -f scenario.py,<this file>``.

It defines no User class; importing it registers the recorder with Locust's event hooks.
"""
from loadgate.plugin.hooks import install

install()

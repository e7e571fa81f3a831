"""Everything that runs inside a Locust process, and only that: the recorder (loaded by ``locust -f
...,locust_plugin.py``), its live view, the in-flight accounting, the web UI session, the capacity
search's load shape, the worker channel's CURVE keys, and the scenario probe (``python -m
loadgate.plugin.probe``, a child that imports the scenario files).

Locust, gevent and zmq are imported here (and by the public :mod:`loadgate.pacing`) only. Every use of
a Locust or CPython internal goes through :mod:`loadgate.plugin.compat`. Nothing here imports
:mod:`loadgate.run`, the CLI side: what the two share is in :mod:`loadgate.shared`.
"""

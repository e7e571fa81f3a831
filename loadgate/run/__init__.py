"""Everything that exists only while load is generated: options, Locust child processes, the recorder plugin,
the live view and progress line, the scenario probe and the embedded demo target.

Locust, gevent and zmq are imported in this folder only, and only inside the Locust child processes
(the recorder, the probe); the CLI process starts them and never imports Locust itself.
"""

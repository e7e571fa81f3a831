"""The CLI side of generating load: one session (:mod:`loadgate.run.session`: the Locust child processes
started, watched, stopped and collected) steered by a driver (:mod:`loadgate.run.drivers`: headless,
capacity, the web UI); options, the progress line, run problems, interrupts, the capacity search, the
local resource sampler and abort watch, and the embedded demo target (its own child process, on gevent).

Runs in the CLI process and never imports Locust or :mod:`loadgate.plugin`: the child is started with
``-f .../plugin/locust_plugin.py`` and configured through ``child.json`` (:mod:`loadgate.shared.child`).
"""

"""The CLI side of generating load: options, the Locust child processes (started, watched, stopped), the
progress line, run problems, interrupts, the capacity search, the web UI session's driver, the local
resource sampler and abort watch, and the embedded demo target (its own child process, on gevent).

Runs in the CLI process and never imports Locust or :mod:`loadgate.plugin`: the child is started with
``-f .../plugin/locust_plugin.py`` and configured through ``child.json`` (:mod:`loadgate.shared.child`).
"""

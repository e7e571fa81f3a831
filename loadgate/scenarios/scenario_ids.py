"""The requirement IDs the scenario files' task tags define, for ``loadgate trace`` (the tags are read by
the scenario probe, which imports Locust in a child process)."""

from __future__ import annotations

import os

from loadgate.scenarios.catalog import load_catalog
from loadgate.trace.catalogue import Definition, relative


def scenario_definitions(path: str, top: str) -> tuple[list[Definition], list[str]]:
    """One definition per (task, requirement tag) under ``path``; a missing folder is a note, not an error
    (a scenario that does not import is a ConfigError, as for ``check``)."""
    if not os.path.exists(path):
        return [], [f"{path}: no scenarios there; pass --scenarios PATH to count their requirement tags"]
    catalog = load_catalog(path)
    return [
        Definition(req, "scenario", relative(t.file, top), t.line, f"{t.user_class}.{t.name.split('.')[-1]}")
        for t in catalog.tasks
        for req in t.requirements
    ], []

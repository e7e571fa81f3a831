"""Scenario discovery and requirement traceability (CLI side; Locust runs in a child probe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from loadgate.errors import ConfigError
from loadgate.gate.thresholds import REQUIREMENT_RE
from loadgate.shared.child import child_env

PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Task:
    file: str
    user_class: str
    name: str
    tags: tuple[str, ...]
    line: int | None
    taskset: str | None = None  # the TaskSet the task belongs to (None: directly on the User class)
    taskset_line: int | None = None
    interrupts: bool = False  # its code calls interrupt(): a way out of its TaskSet

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if REQUIREMENT_RE.match(t))


@dataclass(frozen=True)
class UserClass:
    file: str
    name: str
    host: str | None
    line: int | None
    period: float | None = None  # a paced wait_time's period (s); None: unpaced


@dataclass(frozen=True)
class Catalog:
    """What the scenario files contain: User classes and their tasks with tags."""

    files: tuple[str, ...]
    users: tuple[UserClass, ...]
    tasks: tuple[Task, ...]

    def requirements(self) -> set[str]:
        return {r for t in self.tasks for r in t.requirements}

    def tasks_for(self, requirement: str) -> list[Task]:
        return [t for t in self.tasks if requirement in t.requirements]

    def select(self, requirements: list[str]) -> tuple[list[str], list[UserClass]]:
        """Files and User classes that hold tasks tagged with any of ``requirements``."""
        chosen = {(t.file, t.user_class) for t in self.tasks if set(t.requirements) & set(requirements)}
        users = [u for u in self.users if (u.file, u.name) in chosen]
        files = sorted({u.file for u in users})
        return files, users


def discover(path: str) -> list[str]:
    """Scenario files under ``path`` (a directory: its ``*.py`` not starting with ``_``; or one file)."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".py") and not f.startswith("_"))
        if not files:
            raise ConfigError(
                f"{path}: no scenario files (*.py) found; point --scenarios at a folder of Locust files or at one file"
            )
        return files
    if os.path.isfile(path):
        return [path]
    raise ConfigError(f"{path}: no such scenario file or folder; pass --scenarios PATH (default: scenarios/)")


def inspect_files(files: list[str], timeout: float = PROBE_TIMEOUT_S) -> Catalog:
    """Import the scenario files in a child process and collect their classes and tasks.

    A file that does not import is a ConfigError naming the file, line and the exception.
    """
    env = child_env()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "loadgate.plugin.probe", *files],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{', '.join(files)}: importing the scenarios took longer than {timeout:.0f}s; "
            "a scenario must not block at import time"
        ) from None
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(
            f"{', '.join(files)}: could not inspect the scenarios ({tail}); check that they import with 'python FILE'"
        ) from None
    users, tasks = [], []
    for path, entry in data["files"].items():
        err = entry.get("error")
        if err:
            where = f"{path}:{err['line']}" if err.get("line") else path
            raise ConfigError(
                f"{where}: scenario does not import: {err['type']}: {err['message']}; "
                "fix the file (try 'python " + path + "')"
            )
        for u in entry["users"]:
            users.append(UserClass(path, u["class"], u["host"], u["line"], u.get("period")))
            for t in u["tasks"]:
                tasks.append(
                    Task(
                        path,
                        u["class"],
                        t["name"],
                        tuple(t["tags"]),
                        t["line"],
                        t.get("taskset"),
                        t.get("taskset_line"),
                        bool(t.get("interrupts")),
                    )
                )
    return Catalog(tuple(files), tuple(users), tuple(tasks))


def load_catalog(path: str) -> Catalog:
    return inspect_files(discover(path))


def check_requirements(catalog: Catalog, requirements: list[str], scenarios_path: str) -> None:
    """Every requested requirement must be well-formed and have tagged tasks."""
    known = sorted(catalog.requirements())
    for req in requirements:
        if not REQUIREMENT_RE.match(req):
            raise ConfigError(
                f"--requirement {req}: not a requirement ID; expected the form "
                "REQ-PERF-001 (capitals, digits, dash-separated)"
            )
        if req not in known:
            hint = f"known: {', '.join(known)}" if known else "no task carries a requirement tag"
            raise ConfigError(
                f"--requirement {req}: no task in {scenarios_path} is tagged "
                f'@tag("{req}") ({hint}); tag a task or pick a known requirement'
            )
    users_by_name: dict[str, str] = {}
    _files, users = catalog.select(requirements)
    for u in users:
        if u.name in users_by_name and users_by_name[u.name] != u.file:
            raise ConfigError(
                f"{u.file}:{u.line}: User class {u.name} is also defined in "
                f"{users_by_name[u.name]}; rename one (Locust selects classes by name)"
            )
        users_by_name[u.name] = u.file


def check_latency(catalog: Catalog, files) -> None:
    """A threshold with ``latency: intended`` needs paced users among those that run its requirement (or an
    arrival shape: its iterations start on a schedule, so their latency is measured from it)."""
    for tf in files:
        for t in tf.thresholds:
            if t.latency != "intended" or tf.load.arrival is not None:
                continue
            _paths, users = catalog.select([t.requirement])
            if users and not any(u.period for u in users):
                names = ", ".join(sorted(u.name for u in users))
                raise ConfigError(
                    f"{t.source}: latency: intended, but no User class that runs {t.requirement} "
                    f"is paced ({names}); expected a paced wait_time (constant_throughput or "
                    "constant_pacing) or latency: service"
                )

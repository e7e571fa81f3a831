"""How the CLI hands a Locust child its settings, and how a child of loadgate behaves as one.

The CLI writes one file, ``child.json`` in the run directory (a UI session's folder in the web UI), and
names it in the child's environment (``LOADGATE_CHILD_CONFIG``, set by :func:`child_env`): the run's
requirements, task selection, flush interval, warmup, the live view's alert rules, the open model's
arrival shapes, and for the process
that writes the run directory (local or master) that directory, the full-load duration and the UI
session's folders. Locust's own settings stay Locust flags. The Locust process reads the file
(:func:`read_child_config`) when its command line is set up; the recorder's ``--loadgate-*`` options
keep their names as Locust options, so Locust still shows them and forwards them from a master to its
workers, and a Locust started by hand can still give them as flags.

No Locust here: both processes import this module.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields

from loadgate.shared.keys import ENV_WORKER_KEY

CONFIG_ENV = "LOADGATE_CHILD_CONFIG"  # the path of the child's child.json
PARENT_ENV = "LOADGATE_PARENT_PID"  # set by child_env: the loadgate process a child must not outlive
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds loadgate/


@dataclass
class ChildConfig:
    """What a Locust child of ``loadgate run`` / ``capacity`` / ``ui`` needs to know (``child.json``)."""

    requirements: list[str] = field(default_factory=list)
    select: str = "tasks"  # journeys: the User classes run whole; untagged tasks record an empty requirement
    flush: float = 1.0  # seconds between batches
    warmup: float = 0.0  # seconds after ramp-up left out of the analysis
    rules: list[dict] = field(default_factory=list)  # the live view's alert rules (shared.live_rules)
    # open model: {requirement: {rate, stages: [[seconds, rate]...], max_users, distribution}}; empty: closed
    arrival: dict[str, dict] = field(default_factory=dict)
    # for the process that writes the run directory (local or master); a worker leaves them alone
    dir: str | None = None  # the run directory (a UI session: None, each test makes its own)
    duration: float | None = None  # seconds at full user count after spawning completes
    ui: str | None = None  # a web UI session's folder
    out: str = "reports"  # where a UI session's run directories go

    def write(self, path: str) -> str:
        """Write it as ``path`` (JSON); returns ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=1, allow_nan=False)
            f.write("\n")
        return path

    @classmethod
    def read(cls, path: str) -> "ChildConfig":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def for_worker(self) -> "ChildConfig":
        """The same settings without those of the process that writes the run directory."""
        return ChildConfig(self.requirements, self.select, self.flush, self.warmup, self.rules, self.arrival)


def read_child_config(environ: dict | None = None) -> ChildConfig:
    """The configuration the CLI wrote for this process, or the defaults when none was named (a Locust
    started by hand, a ``loadgate worker`` on another machine): then ``$LOADGATE_DIR`` is the run directory."""
    env = os.environ if environ is None else environ
    path = env.get(CONFIG_ENV)
    if path:
        return ChildConfig.read(path)
    return ChildConfig(dir=env.get("LOADGATE_DIR"))


def child_env(worker_key: str | None = None, config: str | None = None) -> dict:
    """Environment for children: loadgate importable even when run from a source checkout; the worker key, if
    any, for the Locust master/workers (an environment variable: never on a command line others can read);
    ``config``: the path of the child's ``child.json``."""
    env = dict(os.environ)
    env.pop(ENV_WORKER_KEY, None)
    env.pop(CONFIG_ENV, None)
    if worker_key:
        env[ENV_WORKER_KEY] = worker_key
    if config:
        env[CONFIG_ENV] = config
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_ENV] = str(os.getpid())
    return env


def stop_with_parent(poll_s: float = 1.0) -> bool:
    """In a child of loadgate (:func:`child_env`): SIGTERM itself once that process is gone.

    Each child runs in a session of its own, so a loadgate killed hard (SIGKILL, an OOM kill, a CI job
    cancelled) would leave it behind: a Locust worker knocking at a master forever, a demo target
    listening, a run's load going on with nobody to finalise it. The child's own SIGTERM handling then
    stops it as ``loadgate`` would (Locust: stop the users, flush and close the samples stream).
    A process started any other way (by hand, by a container) has no such parent: no watch. The
    variable is taken out of the environment, so what this process starts does not inherit it; a
    parent already gone before the watch began (killed while this one started up) stops it at once.
    Returns whether it watches.
    """
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent.isdigit():
        return False

    def watch() -> None:  # a greenlet under Locust's monkey-patching, a daemon thread elsewhere
        while os.getppid() == int(parent):
            time.sleep(poll_s)
        try:  # (its output went to that process: most likely a broken pipe now)
            print(
                f"loadgate: the loadgate process {parent} that started this one is gone; stopping",
                file=sys.stderr,
                flush=True,
            )
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="loadgate-parent-watch", daemon=True).start()
    return True

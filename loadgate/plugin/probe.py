"""Inspect scenario files in a child process: ``python -m loadgate.plugin.probe FILE…`` prints JSON.

Importing a locustfile imports Locust, which monkey-patches the process with gevent; the CLI
therefore asks this child what the scenarios contain (User classes, hosts, tasks and their tags,
import errors with file:line) and stays clean itself.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import traceback


def _task_name(task) -> str:
    return getattr(task, "__qualname__", None) or getattr(task, "__name__", repr(task))


def _line(obj) -> int | None:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return None


def _interrupts(task) -> bool:
    """Whether the task's code (nested functions included) uses ``….interrupt``: the way out of a TaskSet.

    Read from the compiled code's names, not run; exact for lambdas too, several of which may share a line.
    """
    code = getattr(inspect.unwrap(task), "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        c = stack.pop()
        if "interrupt" in c.co_names:
            return True
        stack.extend(k for k in c.co_consts if inspect.iscode(k))
    return False


def _walk(holder, inherited: frozenset, out: list, seen: set) -> None:
    from locust.user.task import TaskSet

    if holder in seen:
        return
    seen.add(holder)
    weights: dict = {}
    for task in getattr(holder, "tasks", []) or []:  # a task of weight w stands w times in the list
        weights[task] = weights.get(task, 0) + 1
    in_set = isinstance(holder, type) and issubclass(holder, TaskSet)
    for task, weight in weights.items():
        tags = inherited | frozenset(getattr(task, "locust_tag_set", ()))
        if isinstance(task, type) and issubclass(task, TaskSet):
            _walk(task, tags, out, seen)
        else:
            out.append(
                {
                    "name": _task_name(task),
                    "tags": sorted(tags),
                    "line": _line(task),
                    "weight": weight,
                    "taskset": holder.__qualname__ if in_set else None,
                    "taskset_line": _line(holder) if in_set else None,
                    "interrupts": _interrupts(task),
                }
            )


def _error(path: str, exc: BaseException) -> dict:
    """The error with the deepest traceback line that lies in the scenario file itself."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return {"type": type(exc).__name__, "message": str(exc).splitlines()[0] if str(exc) else "", "line": line}


def probe(paths: list[str]) -> dict:
    import locust  # noqa: F401  (gevent patching happens here, in this child only)
    from locust.util.load_locustfile import load_locustfile

    from loadgate.pacing import period_of

    files = {}
    for path in paths:
        entry: dict = {"users": [], "error": None}
        try:
            user_classes, _shapes = load_locustfile(path)
        except BaseException as exc:  # noqa: BLE001 - any failure of a user's file is reported, not raised
            entry["error"] = _error(path, exc)
            files[path] = entry
            continue
        module = os.path.splitext(os.path.basename(path))[0]
        for name, cls in sorted(user_classes.items()):
            if cls.__module__ != module:
                continue  # imported from elsewhere; reported by its own file
            tasks: list = []
            _walk(cls, frozenset(), tasks, set())
            entry["users"].append(
                {
                    "class": name,
                    "host": cls.host or None,
                    "line": _line(cls),
                    "period": period_of(getattr(cls, "wait_time", None)),
                    "tasks": tasks,
                }
            )
        files[path] = entry
    return {"files": files}


def main(argv: list[str]) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # a scenario that prints at import must not corrupt the JSON
    result = probe(argv)
    sys.stdout = real_stdout
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

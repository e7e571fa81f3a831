"""Which requirement(s) a request belongs to: the tags of the task (and TaskSets around it) that issued it.

Tasks are wrapped so that the greenlet running them carries their requirement code while they run;
the recorder's listener looks the code up per request. Loaded into the Locust process only.
"""

from __future__ import annotations

import functools
from typing import Any

from greenlet import getcurrent
from locust.user.task import TaskSet

# greenlet -> code of the requirements of the task it is running (1 + index into REQ_TEXTS); absent:
# outside any task, code 0: the run's requirements
current: dict[Any, int] = {}
REQ_CODES: dict[str, int] = {}
REQ_TEXTS: list[str] = []


def req_code(req: str) -> int:
    code = REQ_CODES.get(req)
    if code is None:
        REQ_TEXTS.append(req)
        code = REQ_CODES[req] = len(REQ_TEXTS)
    return code


def _with_requirement(fn, req: str):
    """Wrap a task (or on_start/on_stop of a tagged TaskSet) so its requests carry ``req``."""
    if getattr(fn, "_loadgate_req", None) == req:
        return fn
    code = req_code(req)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        g = getcurrent()
        prev = current.get(g)
        current[g] = code
        try:
            return fn(*args, **kwargs)
        finally:
            if prev is None:
                current.pop(g, None)
            else:
                current[g] = prev

    wrapper._loadgate_req = req  # type: ignore[attr-defined]
    return wrapper


# the code of every task wrapper (its ``code`` local holds the requirement code while the task runs)
_WRAPPER = next(c for c in _with_requirement.__code__.co_consts if getattr(c, "co_name", None) == "wrapper")


def code_in(frames) -> int | None:
    """The requirement code of the innermost task among ``frames`` (outermost first: a traceback's), or
    None outside any wrapped task. For a request whose task was unwound before it could be recorded."""
    code = None
    for frame in frames:
        if frame.f_code is _WRAPPER:
            code = frame.f_locals.get("code", code)
    return code


def _task_requirements(holder, run_reqs: list[str], inherited: frozenset = frozenset(), seen=None):
    """(owner, index in its task list, task or TaskSet, its requirement IDs of this run as one string,
    is a TaskSet) for every task under ``holder`` (a User or TaskSet class).

    A task's requirements are its own requirement tags plus those of the TaskSets around it,
    restricted to the requirements of this run.
    """
    seen = set() if seen is None else seen
    if holder in seen:
        return
    seen.add(holder)
    for i, task in enumerate(holder.tasks):
        tags = inherited | frozenset(getattr(task, "locust_tag_set", ()))
        reqs = ",".join(r for r in run_reqs if r in tags)
        nested = isinstance(task, type) and issubclass(task, TaskSet)
        yield holder, i, task, reqs, nested
        if nested:
            yield from _task_requirements(task, run_reqs, tags, seen)


def needs_attribution(user_classes, run_reqs: list[str], journeys: bool = False) -> bool:
    """Whether some task's requests belong to fewer requirements than the whole run's.

    When every task left after Locust's ``--tags`` filter carries all of the run's requirements (one
    requirement per run, the usual case), every request belongs to all of them: no task needs wrapping
    and the recorder needs no per-request lookup of the running task.
    """
    everything = ",".join(run_reqs)
    if journeys:  # whole User classes run: an untagged task's requests belong to no requirement
        return any(
            reqs != everything
            for user_class in user_classes
            for *_where, reqs, _nested in _task_requirements(user_class, run_reqs)
        )
    return any(
        reqs not in ("", everything)
        for user_class in user_classes
        for *_where, reqs, _nested in _task_requirements(user_class, run_reqs)
    )


def attribute_tasks(holder, run_reqs: list[str], journeys: bool = False) -> None:
    """Wrap every task under ``holder`` (and a tagged TaskSet's on_start/on_stop) with its requirement IDs.

    With ``journeys`` the untagged tasks (and untagged TaskSets' on_start/on_stop) are wrapped too, with
    the empty requirement: background load, recorded but not gated.
    """
    replaced: dict[Any, list] = {}
    for owner, i, task, reqs, nested in list(_task_requirements(holder, run_reqs)):
        if not reqs and not journeys:
            continue
        if nested:
            for hook in ("on_start", "on_stop"):
                setattr(task, hook, _with_requirement(getattr(task, hook), reqs))
        else:
            replaced.setdefault(owner, list(owner.tasks))[i] = _with_requirement(task, reqs)
    for owner, tasks in replaced.items():  # a new list: a subclass may share its parent's
        owner.tasks = tasks

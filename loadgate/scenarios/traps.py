"""TaskSets that ``select: tasks`` would turn into traps.

Locust's tag filter keeps a TaskSet when some of its tasks carry a selected tag, but drops its
untagged tasks. When the task that calls ``self.interrupt()`` is among those dropped, a user that
enters the TaskSet never leaves it, and the rest of the User class gets no load. Read from the
scenario probe's catalog (the task's code is read with ``ast``, not run); nothing here imports Locust.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from loadgate.scenarios.catalog import Catalog, Task


def trap_warnings(catalog: Catalog, requirements: Sequence[str], threshold_paths: Mapping[str, str]) -> list[str]:
    """One line per TaskSet whose only ways out (tasks calling ``interrupt()``) the tag filter would drop."""
    chosen = set(requirements)
    groups: dict[tuple, list[Task]] = {}
    for t in catalog.tasks:
        if t.taskset is not None:
            groups.setdefault((t.file, t.user_class, t.taskset), []).append(t)
    out = []
    for (file, user_class, taskset), tasks in groups.items():
        kept = [t for t in tasks if chosen & set(t.tags)]
        exits = [t for t in tasks if t.interrupts]
        if not kept or not exits or any(t.interrupts for t in kept):
            continue
        reqs = sorted(chosen & {r for t in kept for r in t.requirements}) or sorted(chosen)
        ways = ", ".join(f"{t.name.split('.')[-1]} (line {t.line or '?'})" for t in exits)
        where = ", ".join(threshold_paths.get(r, f"thresholds/{r}.yaml") for r in reqs)
        out.append(
            f"{file}:{tasks[0].taskset_line or '?'}: TaskSet {taskset} of {user_class} cannot be left under "
            f"{', '.join(reqs)}: its interrupt() task {ways} is not tagged with it, so Locust's tag filter "
            f'drops it and every user that enters {taskset} stays there; tag that task @tag("{reqs[0]}") '
            f"or set 'select: journeys' in the load: block of {where}"
        )
    return out

"""The commits behind a regression: between the baseline run's commit and this run's, those that reference
the regressed requirement first, then the rest (marked), each with hash, subject, author and date.

Both runs record their commit in run.json (``git``: commit and dirty). The list is empty, with the reason,
when either commit is unknown (not recorded, not in the repository) or the clone is too shallow to hold
the range. Merge commits are left out: the commits they bring in are listed themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from loadgate.data.run_doc import RunDoc, read_run
from loadgate.errors import ConfigError
from loadgate.gate.status import Status
from loadgate.gate.verdict_doc import VerdictDoc
from loadgate.trace import git
from loadgate.trace.ids import compile_pattern, requirement_ids

SHALLOW = "history is shallow"
MAX_LISTED = 500  # commits kept in the document (newest first); a regressed requirement's own are all kept


def regressed(verdict: VerdictDoc | None, comparison: Mapping[str, Any] | None) -> list[str]:
    """Requirements with a failed regression threshold, or a regression row in the comparison."""
    reqs = [
        t["requirement"]
        for t in (verdict["thresholds"] if verdict else ())
        if t.get("regression") and t["status"] == Status.FAIL
    ]
    reqs += [r.get("requirement") for r in (comparison or {}).get("requests") or () if r.get("status") == "regression"]
    return [r for r in dict.fromkeys(reqs) if r]


def _repository(folders: Sequence[str | None]) -> str | None:
    for folder in folders:
        if folder and os.path.isdir(folder):
            try:
                return git.toplevel(folder)
            except ConfigError:
                continue
    return None


def changes_since(
    baseline_id: str,
    baseline_run: RunDoc,
    run: Mapping[str, Any],
    regressions: Sequence[str],
    folders: Sequence[str | None],
) -> dict[str, Any]:
    """The ``changes_since_baseline`` document: every commit between the two runs (newest first), and for
    each regressed requirement the list with the commits that reference it first.

    ``folders``: where to look for the repository (the current folder, the run's recorded one).
    """
    base_git, run_git = baseline_run.get("git") or {}, run.get("git") or {}
    doc: dict[str, Any] = {
        "baseline": baseline_id,
        "from": base_git.get("commit"),
        "to": run_git.get("commit"),
        "dirty": {"baseline": base_git.get("dirty"), "run": run_git.get("dirty")},
        "repository": None,
        "reason": None,
        "note": _dirty_note(base_git, run_git),
        "commits": [],
        "omitted": 0,
        "regressions": {r: [] for r in regressions},
    }
    if not doc["from"] or not doc["to"]:
        which = "the baseline run" if not doc["from"] else "this run"
        doc["reason"] = f"{which} recorded no commit (it did not run inside a git repository)"
        return doc
    top = _repository(folders)
    if top is None:
        doc["reason"] = f"no git repository at {', '.join(f for f in dict.fromkeys(folders) if f)}"
        return doc
    doc["repository"] = top
    try:
        reason = _range_problem(top, doc["from"], doc["to"])
        commits = [] if reason else [c for c in git.log(top, doc["from"], doc["to"]) if not c.is_merge]
    except ConfigError as e:  # git itself failed: the run's outputs come first, the list says why it is empty
        reason = f"git could not list them ({e})"
    if reason:
        doc["reason"] = reason
        return doc
    pattern = compile_pattern(None)
    every = [_entry(c, requirement_ids(c.message, pattern)) for c in commits]
    doc["commits"], doc["omitted"] = every[:MAX_LISTED], max(0, len(every) - MAX_LISTED)
    if not every:
        doc["reason"] = (
            "both runs are of the same commit"
            if doc["from"] == doc["to"]
            else "this run's commit has no commit the baseline's lacks"
        )
    for req in regressions:  # every commit that references it; of the others, the newest
        mine = [dict(e, references=True) for e in every if req in e["requirements"]]
        rest = [dict(e, references=False) for e in doc["commits"] if req not in e["requirements"]]
        doc["regressions"][req] = mine + rest
    return doc


def _range_problem(top: str, base: str, head: str) -> str | None:
    """Why the commits from ``base`` to ``head`` cannot be listed in ``top``, or None."""
    found = {sha: git.resolve(top, sha) for sha in (base, head)}
    shallow = git.is_shallow(top)
    if shallow and not (all(found.values()) and git.is_ancestor(top, base, head)):
        return f"{SHALLOW}: the clone at {top} does not reach from {base[:7]} to {head[:7]}; {git.SHALLOW_HINT}"
    for sha, what in ((base, "the baseline run's"), (head, "this run's")):
        if not found[sha]:
            return f"{what} commit {sha[:7]} is not in the repository at {top}; fetch it (git fetch)"
    return None


def _dirty_note(base_git: Mapping[str, Any], run_git: Mapping[str, Any]) -> str | None:
    dirty = [w for w, g in (("the baseline run", base_git), ("this run", run_git)) if g.get("dirty")]
    if not dirty:
        return None
    return f"{' and '.join(dirty)} had uncommitted changes, which no commit below holds"


def _entry(c: git.Commit, ids: Sequence[str]) -> dict[str, Any]:
    return {"commit": c.sha, "subject": c.subject, "author": c.author, "date": c.date, "requirements": list(ids)}


def for_runs(baseline_dir: str, run: Mapping[str, Any], regressions: Sequence[str]) -> dict[str, Any]:
    """:func:`changes_since` for a run against the baseline run directory ``baseline_dir``."""
    baseline_id = os.path.basename(os.path.normpath(baseline_dir))
    try:
        baseline_run = read_run(baseline_dir)
    except (ConfigError, OSError) as e:
        return {
            "baseline": baseline_id,
            "from": None,
            "to": (run.get("git") or {}).get("commit"),
            "dirty": {"baseline": None, "run": (run.get("git") or {}).get("dirty")},
            "repository": None,
            "reason": f"the baseline's run.json cannot be read ({e})",
            "note": None,
            "commits": [],
            "omitted": 0,
            "regressions": {r: [] for r in regressions},
        }
    return changes_since(baseline_id, baseline_run, run, regressions, [os.getcwd(), run.get("cwd")])

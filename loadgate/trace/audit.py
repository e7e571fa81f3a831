"""``loadgate trace``: every commit from a starting point to HEAD must reference a requirement ID.

A commit is flagged when it references none; when it references an ID that no threshold file, scenario
tag or manifest annotation defines; or when it changes a threshold or scenario file of a requirement
without naming that requirement (a scenario file shared by several requirements: any one of them).
Merge commits are skipped unless asked for, and so are commits whose author matches an ``--allow``
pattern (bots).
"""

from __future__ import annotations

import difflib
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadgate.history import store as history
from loadgate.trace import git
from loadgate.trace.catalogue import Catalogue
from loadgate.trace.ids import requirement_ids


@dataclass(frozen=True)
class Problem:
    kind: str  # no-id | unknown-id | unnamed-change
    message: str
    file: str | None = None  # the file a github annotation points at (a changed threshold/scenario file)
    line: int | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "file": self.file, "line": self.line}


@dataclass(frozen=True)
class Traced:
    """One commit, the IDs it references, why it was skipped (merge, allowed) and what is wrong with it."""

    commit: git.Commit
    ids: tuple[str, ...]
    skipped: str | None = None
    problems: tuple[Problem, ...] = ()

    def to_dict(self) -> dict:
        c = self.commit
        return {
            "commit": c.sha,
            "subject": c.subject,
            "author": c.author,
            "email": c.email,
            "date": c.date,
            "merge": c.is_merge,
            "requirements": list(self.ids),
            "skipped": self.skipped,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(frozen=True)
class Range:
    """From which commit (exclusive) to HEAD; ``since`` None: HEAD's whole history."""

    since: str | None
    head: str
    how: str
    shallow: bool

    def to_dict(self) -> dict:
        return {"since": self.since, "head": self.head, "how": self.how, "shallow": self.shallow}


@dataclass(frozen=True)
class Trace:
    range: Range
    commits: tuple[Traced, ...]
    catalogue: Catalogue
    pattern: str
    notes: tuple[str, ...] = field(default=())

    @property
    def untraced(self) -> list[Traced]:
        return [t for t in self.commits if t.skipped is None and t.problems]

    @property
    def ok(self) -> bool:
        return not self.untraced


def choose_range(top: str, since: str | None, history_db: str | None) -> Range:
    """The commits to trace: after ``since``; else after the last passing run's commit in the history; else
    after the merge base with the default branch; else HEAD's whole history."""
    shallow = git.is_shallow(top)
    head = git.resolve(top, "HEAD")
    if head is None:
        raise git.GitError(f"{top}: the repository has no commit yet; commit first, then trace")
    if since is not None:
        sha = git.resolve(top, since)
        if sha is None:
            hint = f"; the clone is shallow: {git.SHALLOW_HINT}" if shallow else ""
            raise git.GitError(
                f"--since {since}: no such commit, branch or tag in {top}{hint}; pass a ref "
                "that 'git rev-parse' knows (a commit hash, origin/main, v1.2)"
            )
        return Range(sha, head, f"--since {since}", shallow)
    for run_id, commit in _passing_commits(history_db):
        sha = git.resolve(top, commit)
        if sha is not None:
            return Range(sha, head, f"the commit of the last passing run, {run_id} ({history_db})", shallow)
    branch = git.default_branch(top)
    base = git.merge_base(top, "HEAD", branch) if branch else None
    if base is not None:
        return Range(base, head, f"the merge base with {branch}", shallow)
    return Range(None, head, "HEAD's whole history (no passing run in the history, no default branch)", shallow)


def _passing_commits(db: str | None) -> list[tuple[str, str]]:
    if not db or not os.path.isfile(db):
        return []
    try:
        return history.passing_commits(db)
    except (sqlite3.Error, OSError, history.HistoryError):
        return []


def trace(
    top: str,
    rng: Range,
    catalogue: Catalogue,
    pattern: re.Pattern[str],
    *,
    allow: Sequence[re.Pattern[str]] = (),
    merges: bool = False,
) -> Trace:
    """Every commit of ``rng``, newest first, with the IDs it references and its problems."""
    known, owners = catalogue.ids(), catalogue.owners()
    out = []
    for commit in git.log(top, rng.since, rng.head):
        ids = tuple(requirement_ids(commit.message, pattern))
        if commit.is_merge and not merges:
            out.append(Traced(commit, ids, "merge"))
        elif any(a.search(f"{commit.author} <{commit.email}>") for a in allow):
            out.append(Traced(commit, ids, "allowed"))
        else:
            out.append(Traced(commit, ids, None, tuple(_problems(top, commit, ids, known, owners))))
    notes = list(catalogue.notes)
    if rng.shallow:
        notes.append(f"the clone is shallow: commits beyond its depth are not seen; {git.SHALLOW_HINT}")
    return Trace(rng, tuple(out), catalogue, pattern.pattern, tuple(notes))


def _problems(
    top: str, commit: git.Commit, ids: Sequence[str], known: set[str], owners: dict[str, set[str]]
) -> list[Problem]:
    problems = []
    if not ids:
        problems.append(
            Problem(
                "no-id",
                "references no requirement ID; name one in the message or in a "
                "'Requirement: REQ-…' trailer (git commit --amend, or reword in a rebase)",
            )
        )
    for i in ids:
        if i not in known:
            near = difflib.get_close_matches(i, sorted(known), n=1)
            problems.append(
                Problem(
                    "unknown-id",
                    f"references {i}, which no threshold file, scenario tag or manifest "
                    "annotation defines; "
                    + (f"did you mean {near[0]}? " if near else "")
                    + f'fix the ID, or define it (thresholds/{i}.yaml, @tag("{i}"))',
                )
            )
    if owners and not commit.is_merge:
        for path in git.changed_files(top, commit.sha):
            theirs = owners.get(path)
            if theirs and not theirs & set(ids):
                names = sorted(theirs)
                which = names[0] if len(names) == 1 else "any of " + ", ".join(names)
                problems.append(
                    Problem(
                        "unnamed-change",
                        f"changes {path}, a file of {', '.join(names)}, without "
                        f"naming {which}; add 'Requirement: {names[0]}' to the message",
                        path,
                    )
                )
    return problems

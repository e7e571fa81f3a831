"""Reading a git repository through the ``git`` command: the commits of a range, the files each one
changed, and the facts about the clone (its top folder, whether it is shallow, the default branch).

``git`` is run as a child process (no library): it is on every machine that has a clone. A folder
that is not a repository, or a ref git does not know, is a ConfigError (exit 2) that says what to do.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from loadgate.errors import ConfigError

TIMEOUT_S = 60
_FIELDS = "%H%x1f%P%x1f%aI%x1f%an%x1f%ae%x1f%B"  # the message last: it may hold anything but NUL
SHALLOW_HINT = (
    "fetch the whole history (git fetch --unshallow; on GitHub Actions: actions/checkout with "
    "fetch-depth: 0; on GitLab: GIT_DEPTH: 0)"
)


class GitError(ConfigError):
    """git could not answer: not a repository, an unknown ref, git missing."""


@dataclass(frozen=True)
class Commit:
    """One commit as ``git log`` gives it; subject, message and author are the committer's free text."""

    sha: str
    parents: tuple[str, ...]
    date: str  # author date, ISO 8601 with its offset
    author: str
    email: str
    message: str

    @property
    def subject(self) -> str:
        return self.message.strip().split("\n", 1)[0].strip() if self.message.strip() else ""

    @property
    def short(self) -> str:
        return self.sha[:7]

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


def git(repo: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``git -C repo ARGS``; a failure with ``check`` is a GitError with git's own last line."""
    try:
        proc = subprocess.run(
            ["git", "-C", repo, *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            encoding="utf-8",
            errors="replace",
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH); install git to trace commits") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{repo}: git {' '.join(args)} took longer than {TIMEOUT_S}s") from None
    if check and proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise GitError(f"{repo}: git {args[0]} failed: {last}")
    return proc


def toplevel(path: str) -> str:
    """The top folder of the repository ``path`` is in; GitError when it is in none."""
    if not os.path.isdir(path):
        raise GitError(f"{path}: no such folder; run loadgate trace inside a git repository")
    proc = git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise GitError(
            f"{os.path.abspath(path)}: not a git repository; run loadgate trace inside a clone "
            "(git clone …), or 'git init' one"
        )
    return proc.stdout.strip()


def is_shallow(repo: str) -> bool:
    return git(repo, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def resolve(repo: str, ref: str) -> str | None:
    """The full hash of the commit ``ref`` names, or None when the repository has no such commit."""
    if ref.startswith("-"):
        return None
    proc = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def is_ancestor(repo: str, older: str, newer: str) -> bool:
    return git(repo, "merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


def default_branch(repo: str) -> str | None:
    """The default branch as a ref: origin's HEAD, else origin/main, origin/master, main, master."""
    proc = git(repo, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
    candidates = [proc.stdout.strip()] if proc.returncode == 0 and proc.stdout.strip() else []
    candidates += ["refs/remotes/origin/main", "refs/remotes/origin/master", "refs/heads/main", "refs/heads/master"]
    for ref in candidates:
        if resolve(repo, ref):
            return ref.removeprefix("refs/remotes/").removeprefix("refs/heads/")
    return None


def merge_base(repo: str, a: str, b: str) -> str | None:
    proc = git(repo, "merge-base", a, b, check=False)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def log(repo: str, since: str | None, head: str = "HEAD", *, merges: bool = True) -> list[Commit]:
    """The commits reachable from ``head`` and not from ``since`` (every one when None), newest first."""
    args = ["log", "-z", f"--format={_FIELDS}"] + ([] if merges else ["--no-merges"])
    args += [f"{since}..{head}" if since else head, "--"]
    out = []
    for record in git(repo, *args).stdout.split("\0"):
        if not record.strip():
            continue
        parts = record.lstrip("\n").split("\x1f", 5)
        if len(parts) < 6:
            continue
        sha, parents, date, author, email, message = parts
        out.append(Commit(sha, tuple(parents.split()), date, author, email, message))
    return out


def changed_files(repo: str, sha: str) -> list[str]:
    """The paths (from the repository's top) a commit changed against its first parent."""
    proc = git(repo, "diff-tree", "--root", "--no-commit-id", "-r", "-z", "--name-only", sha)
    return [p for p in proc.stdout.split("\0") if p]


def tracked_files(repo: str, *patterns: str) -> list[str]:
    """Tracked paths (from the top) matching git pathspecs such as ``*.yaml``."""
    proc = git(repo, "ls-files", "-z", "--", *patterns)
    return [p for p in proc.stdout.split("\0") if p]

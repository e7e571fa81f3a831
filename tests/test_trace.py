"""``loadgate trace`` on a real git repository built in a temp folder: commits with and without IDs, a
trailer, a bot commit, a merge, an unknown ID, a change to a threshold file that does not name its
requirement, and a Kubernetes manifest's requirement-id annotation; every flag and exit code."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from conftest import run_cli
from loadgate.trace.ids import DEFAULT_PATTERN, compile_pattern, requirement_ids

THRESHOLDS = """requirement: REQ-PERF-001
title: 1000 concurrent users
thresholds:
  - metric: p95
    alert: ">500ms"
"""
SCENARIO = """from locust import HttpUser, tag, task


class Shopper(HttpUser):
    @tag("REQ-PERF-001", "REQ-PERF-002")
    @task
    def products(self):
        self.client.get("/api/products")
"""
MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  annotations:
    requirement-id: "REQ-PERF-001,OR-SCALE-001"
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers: [{name: shop, image: shop:1}]
"""


def git(repo, *args: str, author: str = "Dev", email: str = "dev@example.invalid") -> str:
    pre = ["-c", f"user.name={author}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *pre, "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo, path: str, text: str, message: str, **who) -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message, **who)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The repository and {name: sha} of its commits, oldest first."""
    repo = tmp_path_factory.mktemp("trace") / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    c = {"base": commit(repo, "thresholds/REQ-PERF-001.yaml", THRESHOLDS, "REQ-PERF-001: the gate's thresholds")}
    c["scenario"] = commit(repo, "scenarios/shop.py", SCENARIO, "REQ-PERF-001: shop scenario")
    c["manifest"] = commit(repo, "deploy/shop.yaml", MANIFEST, "Deploy the shop\n\nRequirement: OR-SCALE-001")
    c["traced"] = commit(repo, "src/a.txt", "a\n", "REQ-PERF-001: faster lookups")
    c["no_id"] = commit(repo, "src/b.txt", "b\n", "Refactor the cart")
    c["bot"] = commit(
        repo,
        "requirements.txt",
        "x==2\n",
        "Bump x from 1 to 2",
        author="dependabot[bot]",
        email="49699333+dependabot[bot]@users.noreply.github.com",
    )
    c["unknown"] = commit(repo, "src/c.txt", "c\n", "REQ-PREF-001: mystery change")
    c["unnamed"] = commit(
        repo,
        "thresholds/REQ-PERF-001.yaml",
        THRESHOLDS.replace("500", "400"),
        "Tighten the alert\n\nRequirement: OR-SCALE-001",
    )
    git(repo, "checkout", "-q", "-b", "side", c["base"])
    c["side"] = commit(repo, "src/side.txt", "s\n", "Side work for REQ-PERF-002")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'side'", "side")
    c["merge"] = git(repo, "rev-parse", "HEAD")
    c["trailer"] = commit(
        repo,
        "deploy/shop.yaml",
        MANIFEST.replace("shop:1", "shop:2"),
        "Scale out the shop\n\nSee the capacity notes.\n\nRequirement: OR-SCALE-001, see",
    )
    return repo, c


def trace(repo, *args: str):
    return run_cli("trace", *args, cwd=repo)


def untraced(res) -> set[str]:
    return {line.split()[1] for line in res.stdout.splitlines() if line.startswith("error: ")}


def test_plain_lists_every_commit_and_flags_the_three_kinds(repo):
    path, c = repo
    res = trace(path, "--since", c["manifest"])
    assert res.code == 1, res.stderr
    s = {k: v[:7] for k, v in c.items()}
    assert untraced(res) == {s["no_id"], s["bot"], s["unknown"], s["unnamed"]}
    out = res.stdout
    assert out.splitlines()[0] == (
        f"loadgate trace: 8 commit(s) from {s['manifest']} (exclusive) to {s['trailer']}; from --since {c['manifest']}"
    )
    assert f'error: {s["no_id"]} "Refactor the cart" (Dev): references no requirement ID;' in out
    assert (
        f'error: {s["unknown"]} "REQ-PREF-001: mystery change" (Dev): references REQ-PREF-001, which no threshold '
        "file, scenario tag or manifest annotation defines; did you mean REQ-PERF-001?"
    ) in out
    assert (
        f'error: {s["unnamed"]} "Tighten the alert" (Dev): changes thresholds/REQ-PERF-001.yaml, a file of '
        "REQ-PERF-001, without naming REQ-PERF-001; add 'Requirement: REQ-PERF-001' to the message"
    ) in out
    assert re.search(rf"^{s['merge']}  skipped \(merge\)", out, re.M)
    assert re.search(rf"^{s['trailer']}  ok +OR-SCALE-001 +Scale out the shop \(Dev\)$", out, re.M)  # "see" is no ID
    assert re.search(rf"^{s['side']}  ok +REQ-PERF-002 ", out, re.M)  # a merged branch's commits are traced
    assert out.splitlines()[-1] == "FAILED: 3 of 7 commit(s) traced; skipped 1 merge(s) and 0 allowed commit(s)"


def test_allow_skips_bot_commits(repo):
    path, c = repo
    res = trace(path, "--since", c["manifest"], "--allow", r"dependabot\[bot\]")
    assert res.code == 1
    assert untraced(res) == {c[k][:7] for k in ("no_id", "unknown", "unnamed")}
    assert re.search(rf"^{c['bot'][:7]}  skipped \(allowed\)", res.stdout, re.M)
    assert res.stdout.splitlines()[-1].endswith("skipped 1 merge(s) and 1 allowed commit(s)")


def test_merges_checks_merge_commits_too(repo):
    path, c = repo
    res = trace(path, "--since", c["unnamed"], "--merges")
    assert res.code == 1 and untraced(res) == {c["merge"][:7]}
    assert trace(path, "--since", c["unnamed"]).code == 0  # without --merges: all traced


def test_exit_0_when_every_commit_is_traced(repo):
    path, c = repo
    res = trace(path, "--since", c["unnamed"])
    assert res.code == 0, res.stdout
    assert res.stdout.splitlines()[-1] == "ok: 2 of 2 commit(s) traced; skipped 1 merge(s) and 0 allowed commit(s)"


def test_pattern_changes_what_an_id_looks_like(repo):
    path, c = repo
    res = trace(path, "--since", c["scenario"], "--pattern", r"\bOR-[A-Z]+-\d+\b", "--allow", "dependabot")
    # REQ-… in a message no longer counts; the Requirement: trailer still names IDs explicitly
    assert c["traced"][:7] in untraced(res) and c["manifest"][:7] not in untraced(res)
    assert c["unknown"][:7] in untraced(res)  # now it names nothing at all
    res = trace(path, "--since", c["base"], "--pattern", "REQ-(")
    assert res.code == 2
    assert res.error_lines[0].startswith("loadgate trace: error: --pattern 'REQ-(': not a regular expression")


def test_format_github_annotates_and_json_is_one_document(repo):
    path, c = repo
    res = trace(path, "--since", c["manifest"], "--format", "github")
    assert res.code == 1
    errors = [line for line in res.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 4
    assert (
        f"::error file=thresholds/REQ-PERF-001.yaml,title=Requirements traceability%3A commit {c['unnamed'][:7]}"
        "::Tighten the alert: changes thresholds/REQ-PERF-001.yaml"
    ) in "\n".join(errors)
    assert (
        f"::error title=Requirements traceability%3A commit {c['no_id'][:7]}::Refactor the cart: references no"
        in "\n".join(errors)
    )
    res = trace(path, "--since", c["manifest"], "--format", "json")
    assert res.code == 1
    doc = json.loads(res.stdout)
    assert doc["schema"] == "loadgate.trace/1" and doc["traced"] is False and doc["pattern"] == DEFAULT_PATTERN
    by_sha = {x["commit"]: x for x in doc["commits"]}
    assert by_sha[c["traced"]]["requirements"] == ["REQ-PERF-001"] and by_sha[c["traced"]]["problems"] == []
    assert [p["kind"] for p in by_sha[c["unnamed"]]["problems"]] == ["unnamed-change"]
    assert [p["kind"] for p in by_sha[c["unknown"]]["problems"]] == ["unknown-id"]
    assert by_sha[c["merge"]]["skipped"] == "merge" and by_sha[c["merge"]]["merge"] is True
    assert set(doc["untraced"]) == {c[k] for k in ("no_id", "bot", "unknown", "unnamed")}
    assert set(doc["defined"]) == {"REQ-PERF-001", "REQ-PERF-002", "OR-SCALE-001"}


def test_ids_prints_where_each_id_is_defined(repo):
    path, _c = repo
    res = trace(path, "--ids")
    assert res.code == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:-1]]
    assert [r[:3] for r in rows] == [
        ["OR-SCALE-001", "manifest", "deploy/shop.yaml:6"],
        ["REQ-PERF-001", "thresholds", "thresholds/REQ-PERF-001.yaml:1"],
        ["REQ-PERF-001", "scenario", "scenarios/shop.py:5"],
        ["REQ-PERF-001", "manifest", "deploy/shop.yaml:6"],
        ["REQ-PERF-002", "scenario", "scenarios/shop.py:5"],
    ]
    assert res.stdout.splitlines()[-1] == "3 requirement ID(s) defined"
    doc = json.loads(trace(path, "--ids", "--format", "json").stdout)
    assert doc["ids"]["OR-SCALE-001"] == [
        {"id": "OR-SCALE-001", "kind": "manifest", "file": "deploy/shop.yaml", "line": 6, "detail": "Deployment/shop"}
    ]


def test_usage_errors_exit_2(repo, tmp_path):
    path, _c = repo
    res = trace(path, "--since", "v9.9")
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate trace: error: --since v9.9: no such commit, branch or tag in {path}; pass a "
        "ref that 'git rev-parse' knows (a commit hash, origin/main, v1.2)"
    ]
    res = run_cli("trace", cwd=tmp_path)
    assert res.code == 2
    assert res.error_lines == [
        f"loadgate trace: error: {tmp_path}: not a git repository; run loadgate trace inside a "
        "clone (git clone …), or 'git init' one"
    ]


def test_a_shallow_clone_names_the_fix_when_ref_is_beyond_its_depth(repo, tmp_path):
    path, c = repo
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{path}", str(shallow)], check=True)
    res = trace(shallow, "--since", c["base"])
    assert res.code == 2 and "the clone is shallow: fetch the whole history" in res.error_lines[0]


def test_default_start_is_the_merge_base_with_the_default_branch(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "thresholds/REQ-A-1.yaml", THRESHOLDS.replace("REQ-PERF-001", "REQ-A-1"), "REQ-A-1: thresholds")
    fork = commit(repo, "src/x.txt", "x\n", "no ID on main")
    git(repo, "checkout", "-q", "-b", "feature")
    mine = commit(repo, "src/y.txt", "y\n", "REQ-A-1: the feature")
    res = trace(repo)  # no history.sqlite in reports/, no scenarios/ folder: a note, not an error
    assert res.code == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0] == (
        f"loadgate trace: 1 commit(s) from {fork[:7]} (exclusive) to {mine[:7]}; from the merge base with main"
    )
    assert "note: scenarios: no scenarios there; pass --scenarios PATH" in res.stdout


def test_ids_in_messages_and_trailers():
    p = compile_pattern(None)
    assert requirement_ids("REQ-PERF-001: fix (OR-SCALE-001). req-perf-002 REQ-PERF-001a", p) == [
        "REQ-PERF-001",
        "OR-SCALE-001",
    ]
    assert requirement_ids("Fix\n\nRequirement: PERF-7, see notes\nrequirements: REQ-X-1", p) == ["REQ-X-1", "PERF-7"]
    assert requirement_ids("[T-12] x", compile_pattern(r"\[(T-\d+)\]")) == ["T-12"]
    assert requirement_ids("a T-12 b", compile_pattern(r"(?P<pre>a )(?P<id>T-\d+)")) == ["T-12"]

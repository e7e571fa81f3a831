"""A regression names its commits: two real runs of the demo target at two commits of a real repository,
the second 3x slower; its verdict, summary.md, report.html and ``loadgate compare`` list exactly the
commits between them, those referencing the regressed requirement first. A shallow clone says why it
cannot list them."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import subprocess

import pytest

from conftest import load, run_cli
from loadgate.trace import regression

REQ = "REQ-SHOP-001"
SCENARIO = """from locust import FastHttpUser, constant, tag, task


class Shopper(FastHttpUser):
    wait_time = constant(0.05)

    @tag("REQ-SHOP-001")
    @task
    def products(self):
        self.client.get("/api/products")
"""
THRESHOLDS = f"""requirement: {REQ}
title: Product pages stay fast
load: {{users: 5, spawn_rate: 5, duration: 4s, warmup: 0s}}
thresholds:
  - metric: p50
    regression: ">10%"
  - metric: error_rate
    alert: ">50%"
"""
AUTHOR = "Eve & Co"  # git drops < and > from names; & is what HTML and Markdown must escape
HOSTILE = "Update docs <script>alert(1)</script> *bold* [x](javascript:alert(1)) | pipe"


def git(repo, *args: str, author: str = "Dev") -> str:
    env_args = ["-c", f"user.name={author}", "-c", "user.email=dev@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *env_args, "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo, path: str, text: str, message: str, author: str = "Dev") -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message, author=author)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(repo, out, first run dir, second run dir, {name: sha}) after two real runs at two commits."""
    root = tmp_path_factory.mktemp("regr")
    repo, out = root / "repo", root / "reports"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shas = {"scenario": commit(repo, "scenarios/shop.py", SCENARIO, f"Shop scenario\n\nRequirement: {REQ}")}
    shas["base"] = commit(repo, "thresholds/REQ-SHOP-001.yaml", THRESHOLDS, f"{REQ}: thresholds of the shop")
    args = ("run", "--requirement", REQ, "--out", str(out))
    first = run_cli(*args, cwd=repo)
    assert first.code == 0, first.stdout + first.stderr
    shas["cache"] = commit(repo, "src/cache.txt", "lru\n", f"{REQ}: cache product pages")
    shas["docs"] = commit(repo, "docs/readme.md", "docs\n", HOSTILE, author=AUTHOR)
    shas["index"] = commit(repo, "src/index.txt", "btree\n", f"Tune the search index\n\nRequirement: {REQ}")
    shas["scale"] = commit(repo, "deploy/replicas.txt", "4\n", "OR-SCALE-001: more replicas")
    (repo / "src/cache.txt").write_text("lfu\n")  # uncommitted: the second run's tree is dirty
    second = run_cli(*args, "--target-latency-scale", "3", cwd=repo)
    assert second.code == 1, second.stdout + second.stderr
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 2
    return repo, out, dirs[0], dirs[1], shas, second


def test_the_second_run_regresses_and_its_verdict_lists_exactly_the_commits_between(runs):
    repo, out, first, second, shas, res = runs
    verdict = load(second, "verdict.json")
    assert any(t["regression"] and t["status"] == "fail" for t in verdict["thresholds"] if "regression" in t)
    changes = verdict["changes_since_baseline"]
    assert changes["baseline"] == first.name and changes["reason"] is None
    assert (changes["from"], changes["to"]) == (shas["base"], shas["scale"])
    assert changes["dirty"] == {"baseline": False, "run": True}
    assert changes["note"] == "this run had uncommitted changes, which no commit below holds"
    listed = changes["regressions"][REQ]
    # those referencing the requirement first (newest first within each part), then the rest, marked
    assert [e["commit"] for e in listed] == [shas["index"], shas["cache"], shas["scale"], shas["docs"]]
    assert [e["references"] for e in listed] == [True, True, False, False]
    assert listed[3]["subject"] == HOSTILE and listed[3]["author"] == AUTHOR
    assert all(set(e) >= {"commit", "subject", "author", "date"} for e in listed)
    assert {c["commit"] for c in changes["commits"]} == {shas[k] for k in ("cache", "docs", "index", "scale")}
    # the keys verdict.json had before are all still there
    assert {"schema", "verdict", "exit_code", "reasons", "thresholds", "strict"} <= set(verdict)
    # the terminal names them too
    assert f"  {shas['index'][:7]}" in res.stdout and f"* {shas['docs'][:7]}" in res.stdout


def test_the_history_keeps_each_runs_commit_and_dirty_flag(runs):
    _repo, out, _first, _second, shas, _res = runs
    conn = sqlite3.connect(out / "history.sqlite")
    assert conn.execute("SELECT git_commit, git_dirty FROM runs ORDER BY seq").fetchall() == [
        (shas["base"], 0),
        (shas["scale"], 1),
    ]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()
    import loadgate

    frame = loadgate.open_history(out)
    assert frame["git_commit"].tolist() == [shas["base"], shas["scale"]]
    assert frame["git_dirty"].tolist() == [False, True]


def test_the_first_run_has_no_baseline_and_no_changes_key(runs):
    _repo, _out, first, _second, _shas, _res = runs
    assert "changes_since_baseline" not in load(first, "verdict.json")


def test_summary_md_and_the_report_list_them_escaped(runs):
    _repo, _out, _first, second, shas, _res = runs
    md = (second / "summary.md").read_text()
    assert f"**{REQ} regressed**: 2 of 4 commit(s)" in md
    assert "Note: this run had uncommitted changes, which no commit below holds." in md
    rows = [line for line in md.splitlines() if line.startswith(f"| {shas['docs'][:7]}")]
    assert len(rows) == 1 and "<script>" not in md and "\\<script\\>" in rows[0] and "\\| pipe" in rows[0]
    assert "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in rows[0] and rows[0].endswith(" | no |")
    assert "Eve \\& Co" in rows[0]
    page = (second / "report.html").read_text()
    assert "<script>alert(1)" not in page and "Eve & Co" not in page
    assert html.escape(HOSTILE, quote=False) in page and "Eve &amp; Co" in page
    assert 'id="changes"' in page and f"{REQ} regressed: 2 of 4 commits reference it" in page
    order = [page.index(f'title="{shas[k]}"') for k in ("index", "cache", "scale", "docs")]
    assert order == sorted(order)
    assert "Changes since baseline</th>" in page and "2 of 4 commits reference REQ-SHOP-001" in page


def test_compare_lists_them_and_a_shallow_clone_says_history_is_shallow(runs, tmp_path):
    repo, _out, first, second, shas, _res = runs
    res = run_cli("compare", str(first), str(second), "--json", cwd=repo)
    assert res.code == 1, res.stderr
    doc = json.loads(res.stdout)
    assert [e["commit"] for e in doc["changes_since_baseline"]["regressions"][REQ]] == [
        shas["index"],
        shas["cache"],
        shas["scale"],
        shas["docs"],
    ]
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True)
    res = run_cli("compare", str(first), str(second), "--json", cwd=shallow)
    assert res.code == 1, res.stderr
    changes = json.loads(res.stdout)["changes_since_baseline"]
    assert changes["reason"].startswith("history is shallow: ") and "fetch-depth: 0" in changes["reason"]
    assert changes["commits"] == [] and changes["regressions"] == {REQ: []}
    text = run_cli("compare", str(first), str(second), cwd=shallow)
    assert "none listed: history is shallow" in text.stdout and text.stdout.splitlines()[-1].startswith("verdict: FAIL")


def test_trace_starts_at_the_last_passing_runs_commit(runs):
    repo, out, _first, _second, shas, _res = runs
    res = run_cli("trace", "--out", str(out), "--format", "json", cwd=repo)
    doc = json.loads(res.stdout)
    assert doc["range"]["since"] == shas["base"] and "last passing run" in doc["range"]["how"]
    assert [c["commit"] for c in doc["commits"]] == [shas[k] for k in ("scale", "index", "docs", "cache")]
    # docs names no ID; scale names OR-SCALE-001, which nothing defines
    assert set(doc["untraced"]) == {shas["docs"], shas["scale"]} and res.code == 1


def test_a_long_range_keeps_the_newest_commits_and_every_one_of_the_regressed_requirement(runs, monkeypatch):
    repo, _out, _first, _second, shas, _res = runs
    monkeypatch.setattr(regression, "MAX_LISTED", 1)
    base, run = {"git": {"commit": shas["base"]}}, {"git": {"commit": shas["scale"]}}
    doc = regression.changes_since("b", base, run, [REQ], [str(repo)])
    assert [c["commit"] for c in doc["commits"]] == [shas["scale"]] and doc["omitted"] == 3
    assert [e["commit"] for e in doc["regressions"][REQ]] == [shas["index"], shas["cache"], shas["scale"]]


def test_unknown_commits_give_a_reason_not_a_crash(runs, tmp_path):
    repo, _out, _first, _second, shas, _res = runs
    base = {"git": {"commit": "0" * 40, "dirty": False}}
    run = {"git": {"commit": shas["scale"], "dirty": True}}
    doc = regression.changes_since("b", base, run, [REQ], [str(repo)])
    assert (
        doc["reason"] == f"the baseline run's commit 0000000 is not in the repository at {repo}; fetch it (git fetch)"
    )
    assert doc["regressions"] == {REQ: []} and "this run had uncommitted changes" in doc["note"]
    doc = regression.changes_since("b", {"git": None}, run, [REQ], [str(repo)])
    assert doc["reason"].startswith("the baseline run recorded no commit")
    doc = regression.changes_since("b", base, run, [REQ], [str(tmp_path)])
    assert doc["reason"] == f"no git repository at {tmp_path}"


def test_an_empty_list_shows_its_reason_and_hostile_commits_stay_text():
    from loadgate.gate.verdict import Verdict
    from loadgate.outputs.report import render_report
    from loadgate.outputs.summary_md import render_summary_md

    evil = "</script><!--<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"
    entry = {
        "commit": "c" * 40,
        "subject": evil,
        "author": evil,
        "date": "2026-12-07T00:00:00+00:00",
        "requirements": [REQ],
    }
    changes = {
        "baseline": "B",
        "from": "a" * 40,
        "to": "b" * 40,
        "dirty": {"baseline": False, "run": False},
        "repository": "/r",
        "reason": None,
        "note": None,
        "commits": [entry],
        "regressions": {REQ: [dict(entry, references=True)], "REQ-OTHER-1": []},
    }
    run = {"requirements": [REQ], "start": 1.0, "end": 2.0}
    summary = {"requirements": {}, "requests": [], "overall": {}}
    page = render_report(verdict=Verdict("fail", 1, (), (), changes=changes).to_dict(), summary=summary, run=run)
    assert "<img src=x" not in page and "<!--<script>" not in page and "&lt;img src=x" in page
    assert "1 of 1 commit reference REQ-SHOP-001" in page  # the traceability table's column
    md = render_summary_md(Verdict("fail", 1, (), (), changes=changes), {})
    assert not re.search(r"(?<!\\)[<>]", md) and "\\<img src=x onerror=alert\\(1\\)\\>" in md
    shallow = dict(
        changes,
        reason=f"{regression.SHALLOW}: the clone at /r does not reach from aaaaaaa to bbbbbbb",
        commits=[],
        regressions={REQ: []},
    )
    page = render_report(verdict=Verdict("fail", 1, (), (), changes=shallow).to_dict(), summary=summary, run=run)
    assert "<b>No commit listed:</b> history is shallow: the clone at /r does not reach" in page
    assert "No commit listed: history is shallow" in render_summary_md(Verdict("fail", 1, (), (), changes=shallow), {})


def test_a_schema_1_history_gains_the_dirty_flag_and_keeps_its_records(tmp_path):
    from loadgate.history import store as history

    db = tmp_path / "history.sqlite"
    conn = sqlite3.connect(db)
    for statement in history._MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO runs (run_id, run_dir, kind, requirements, started, verdict, exit_code, git_commit,"
        " recorded_at) VALUES ('old', '/x/old', 'run', 'REQ-A-1', 1.0, 'pass', 0, 'aaa', 1.0)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    run = {"requirements": ["REQ-A-1"], "start": 2.0, "git": {"commit": "bbb", "dirty": True}}
    history.record(str(db), str(tmp_path / "new"), run, {}, {"verdict": "pass", "exit_code": 0}, kind="run")
    failed = {**run, "start": 3.0, "git": {"commit": "ccc", "dirty": False}}
    history.record(str(db), str(tmp_path / "bad"), failed, {}, {"verdict": "fail", "exit_code": 1}, kind="run")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT run_id, git_commit, git_dirty FROM runs ORDER BY seq").fetchall() == [
        ("old", "aaa", None),
        ("new", "bbb", 1),
        ("bad", "ccc", 0),
    ]
    conn.close()
    assert history.passing_commits(str(db)) == [("new", "bbb"), ("old", "aaa")]  # trace's default start: newest pass

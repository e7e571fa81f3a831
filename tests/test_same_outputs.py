"""bench/same_outputs.py (same samples, same summary.json and verdict.json under another revision's code)
and bench/longest_functions.py."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from conftest import E2E, ROOT, run_cli, run_dir_of

ROW = re.compile(r"^(\S+)\s+(summary\.json|verdict\.json|exit code)\s+(identical|differs)\b", re.M)


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("same") / "reports"
    res = run_cli(
        "run",
        "--requirement",
        "REQ-T-PASS",
        "--scenarios",
        str(E2E / "scenarios"),
        "--thresholds",
        str(E2E / "thresholds"),
        "--out",
        str(out),
        "--duration",
        "2s",
    )
    assert res.code == 0, res.stderr
    return run_dir_of(out)


def test_the_same_code_gives_identical_files(run_dir):
    before = (run_dir / "verdict.json").read_bytes()
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "same_outputs.py"), "--ref", "HEAD", "--from-dirs", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {m[2]: m[3] for m in ROW.finditer(p.stdout) if m[1] == run_dir.name}
    assert rows == {"summary.json": "identical", "verdict.json": "identical", "exit code": "identical"}, p.stdout
    assert "all identical" in p.stdout
    assert (run_dir / "verdict.json").read_bytes() == before  # gated copies, never the run directory given
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert "ref-worktree" not in worktrees  # the reference checkout is removed afterwards


def test_a_difference_is_named_by_its_json_path():
    same = _bench("same_outputs")
    a = {"verdict": "pass", "thresholds": [{"metric": "p95", "value": 12.5}, {"metric": "p99", "value": 40.0}]}
    b = json.loads(json.dumps(a))
    b["thresholds"][1]["value"] = 40.25
    assert same.first_difference(a, a) is None
    assert same.first_difference(a, b) == "$.thresholds[1].value: 40.0 vs 40.25"
    del b["thresholds"][1]["value"]
    assert same.first_difference(a, b) == "$.thresholds[1].value: only in the first"
    raw = json.dumps(a).encode()
    assert same.compare_bytes(raw, raw) is None
    assert same.compare_bytes(None, None) == "written by neither side"  # a gate that failed on both sides
    assert same.compare_bytes(raw, json.dumps(a, indent=2).encode()).startswith("same JSON, different bytes")
    assert same.compare_bytes(b'{"a": 1, "b": 2}', b'{"b": 2, "a": 1}') == "$: same keys in another order"
    assert same.compare_bytes(b'{"n": 1}', b'{"n": 1.0}') == "$.n: int 1 vs float 1.0"


def test_longest_functions_names_methods_and_nested_functions():
    longest = _bench("longest_functions")
    source = (
        "class A:\n"
        "    def short(self):\n"
        "        return 1\n"
        "\n"
        "    def long(self):\n"
        "        def inner():\n"
        "            return 2\n"
        "        x = inner()\n"
        "        return x\n"
        "\n"
        "async def top():\n"
        "    pass\n"
    )
    rows = longest.longest({"m.py": source}, top=4)
    assert rows == [
        (5, "A.long", "m.py:5"),
        (2, "A.long.inner", "m.py:6"),
        (2, "A.short", "m.py:2"),
        (2, "top", "m.py:11"),
    ]

"""Do the same samples give byte-identical summary.json and verdict.json under another revision's code?

    python bench/same_outputs.py --ref REV [--keep DIR]
    python bench/same_outputs.py --ref REV --from-dirs RUN_DIR [RUN_DIR ...] [--thresholds PATH]

For a structural change that must not change any output. Without --from-dirs, four run directories are
made once, by real short runs of this checkout against the embedded demo target (scenarios and thresholds
written to a temporary folder): a paced run (Locust's constant_throughput), an unpaced run, a distributed
run (--workers 2, both requirements) and a capacity run (loadgate capacity, steps between 2 and 8
users). The thresholds cover percentiles (from the schedule and service latency), per-request
percentiles, error rate, throughput, mean and max, and for the capacity run max_users and max_throughput.

Then REV is checked out in a temporary ``git worktree`` (removed afterwards), and each run directory is
re-gated with ``loadgate gate`` twice, once by REV's code and once by this checkout's (``python -m
loadgate`` with PYTHONPATH set to that tree; the C extension is not needed to gate). Each side gates a
fresh copy of the run directory (its summary.json and verdict.json deleted, so what is compared was
written by that side's code) at the same path, in a folder of its own (so history.sqlite, report.html and
the re-sealed manifest go to the copy, and the side before leaves nothing behind), from the same
neutral working directory, with the same --thresholds and with every LOADGATE_* variable removed from
the environment (no notifications, no signing key). The copy has no history beside it, so no baseline
and no ``changes_since_baseline``. Then summary.json and verdict.json of the two sides are compared byte
for byte, and so are the gate's exit codes.

``loadgate gate`` does not judge a capacity directory as a capacity search (max_users thresholds are
skipped, saying so); it gates the whole run. So the capacity case compares what ``gate`` produces, and a
second case, ``capacity/judge``, re-judges the directory as ``loadgate capacity`` does after its search,
through ``gate_capacity`` (see CAPACITY_JUDGE: if the change moves it, add the new place there), from
capacity.json, without the highest passing step's verdict, which the run directory does not keep.

Nothing is normalised: paths match because both sides use the same path, and no time is written by a
re-gate into either file. Prints a table (case, file, identical or the first differing JSON path; "first"
is REV's side, "second" this checkout's). Exit 0 when all are identical, 1 otherwise (a gate that errors
on either side counts as a difference), 2 when the runs could not be made or REV is not a commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FILES = ("summary.json", "verdict.json")

SCENARIO = '''"""Scenarios for bench/same_outputs.py: paced, unpaced and capacity users against the demo target."""
import random

from locust import FastHttpUser, between, constant_throughput, tag, task


class Paced(FastHttpUser):
    wait_time = constant_throughput(5)

    @tag("REQ-SAME-PACED")
    @task(3)
    def products(self):
        self.client.get("/api/products")

    @tag("REQ-SAME-PACED")
    @task(2)
    def user(self):
        self.client.get(f"/api/users/{random.randint(1, 1000)}", name="/api/users/[id]")

    @tag("REQ-SAME-PACED")
    @task(1)
    def flaky(self):
        self.client.get("/api/flaky?p=0.1", name="/api/flaky")


class Unpaced(FastHttpUser):
    wait_time = between(0.05, 0.15)

    @tag("REQ-SAME-UNPACED")
    @task(3)
    def products(self):
        self.client.get("/api/products")

    @tag("REQ-SAME-UNPACED")
    @task(1)
    def search(self):
        self.client.get(f"/api/search?q={random.choice(['lamp', 'desk'])}", name="/api/search?q=[term]")


class Capacity(FastHttpUser):
    wait_time = constant_throughput(2)

    @tag("REQ-SAME-CAP")
    @task
    def limited(self):
        self.client.get("/api/limited/4/100", name="/api/limited/4/100")
'''

THRESHOLDS = {
    "REQ-SAME-PACED": """requirement: REQ-SAME-PACED
title: paced users for the same-outputs check
thresholds:
  - metric: p95
    target: "<150ms"
    alert: ">2s"
  - metric: p50
    target: "<60ms"
  - metric: p99.9
    alert: ">5s"
  - metric: p99
    request: "GET /api/users/[id]"
    alert: ">1s"
    min_requests: 20
  - metric: error_rate
    target: "<1%"
    alert: ">50%"
  - metric: throughput
    target: ">40/s"
    alert: "<5/s"
  - metric: mean
    latency: service
    alert: ">1s"
""",
    "REQ-SAME-UNPACED": """requirement: REQ-SAME-UNPACED
title: unpaced users for the same-outputs check
thresholds:
  - metric: p95
    target: "<150ms"
    alert: ">2s"
  - metric: p90
    request: "GET /api/search?q=[term]"
    alert: ">1s"
  - metric: error_rate
    target: "<0.1%"
    alert: ">5%"
  - metric: throughput
    alert: "<5/s"
  - metric: max
    target: "<1s"
""",
    "REQ-SAME-CAP": """requirement: REQ-SAME-CAP
title: capacity users for the same-outputs check
thresholds:
  - metric: p95
    alert: ">300ms"
  - metric: p99
    request: "GET /api/limited/4/100"
    target: "<250ms"
  - metric: error_rate
    alert: ">1%"
  - metric: throughput
    alert: "<1/s"
  - metric: max_users
    alert: "<2"
  - metric: max_throughput
    alert: "<1/s"
""",
}

RUN = ["--users", "10", "--spawn-rate", "10", "--duration", "6s", "--warmup", "1s"]
MADE = {  # case -> the command line after "python -m loadgate"
    "paced": ["run", "--requirement", "REQ-SAME-PACED", *RUN],
    "unpaced": ["run", "--requirement", "REQ-SAME-UNPACED", *RUN],
    "distributed": [
        "run",
        "--requirement",
        "REQ-SAME-PACED",
        "--requirement",
        "REQ-SAME-UNPACED",
        *RUN,
        "--workers",
        "2",
    ],
    "capacity": [
        "capacity",
        "--requirement",
        "REQ-SAME-CAP",
        "--start-users",
        "2",
        "--max-users",
        "8",
        "--step-duration",
        "2s",
        "--resolution",
        "50%",
        "--budget",
        "2m",
    ],
}

# Where each code keeps what the capacity re-judge calls, tried in order ("module:function"): if the change
# moves one, add its new place here (the old one stays for REV).
CAPACITY_JUDGE = {
    "gate_capacity": ("loadgate.evaluate:gate_capacity",),
    "load_thresholds": ("loadgate.gate.thresholds:load_thresholds",),
}
JUDGE = r"""
import importlib, json, os, sys
run_dir, thresholds, places = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

def find(name):
    for place in places[name]:
        module, _, attr = place.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    sys.exit(f"{name} is at none of {places[name]}: add its place to CAPACITY_JUDGE in bench/same_outputs.py")

gate_capacity, load_thresholds = find("gate_capacity"), find("load_thresholds")
files = load_thresholds(thresholds)
with open(os.path.join(run_dir, "run.json")) as f:
    reqs = json.load(f)["requirements"]
with open(os.path.join(run_dir, "capacity.json")) as f:
    doc = json.load(f)
verdict, _, _ = gate_capacity(run_dir, {r: files[r] for r in reqs}, doc, None,
                              inconclusive=bool(doc.get("inconclusive")))
print(f"capacity re-judged: {verdict.verdict} (exit {verdict.exit_code})")  # exit 0: it ran
"""


def die(message: str) -> None:
    print(f"same_outputs: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- comparison ----------------------------------------------------------------------------------
def first_difference(a: Any, b: Any, path: str = "$") -> str | None:
    """The JSON path of the first place two parsed documents differ (None when equal), with what differs."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {_short(a)} vs {type(b).__name__} {_short(b)}"
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b or k not in a:
                return f"{path}.{k}: only in the {'first' if k in a else 'second'}"
            found = first_difference(a[k], b[k], f"{path}.{k}")
            if found:
                return found
        if list(a) != list(b):
            return f"{path}: same keys in another order"
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        return None
    return None if a == b else f"{path}: {_short(a)} vs {_short(b)}"


def _short(x: Any) -> str:
    text = json.dumps(x)
    return text if len(text) <= 60 else text[:57] + "..."


def compare_bytes(a: bytes | None, b: bytes | None) -> str | None:
    """None when identical; else the first differing JSON path (or why the bytes differ)."""
    if a is None and b is None:
        return "written by neither side"
    if a == b:
        return None
    if a is None or b is None:
        return "not written by the " + ("first" if a is None else "second") + " side"
    try:
        da, db = json.loads(a), json.loads(b)
    except ValueError as e:
        return f"not JSON: {e}"
    found = first_difference(da, db)
    if found:
        return found
    lines_a, lines_b = a.splitlines(), b.splitlines()
    line = next((i for i, (x, y) in enumerate(zip(lines_a, lines_b), 1) if x != y), min(len(lines_a), len(lines_b)) + 1)
    return f"same JSON, different bytes (formatting) from line {line}"


# --- running the code of a tree ------------------------------------------------------------------
def env_for(tree: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADGATE_") and k != "GITHUB_STEP_SUMMARY"}
    env["PYTHONPATH"] = str(tree)
    return env


def which_loadgate(tree: Path, cwd: Path) -> str:
    """The loadgate package a child process with this tree's environment imports (must be the tree's)."""
    p = subprocess.run(
        [sys.executable, "-c", "import loadgate, os; print(os.path.dirname(loadgate.__file__))"],
        cwd=cwd,
        env=env_for(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    found = Path(p.stdout.strip()).resolve()
    if found != (tree / "loadgate").resolve():
        die(
            f"with PYTHONPATH={tree} the child imports {found}, not "
            f"{tree / 'loadgate'}; run with a Python whose site-packages do not shadow it"
        )
    return str(found)


def make_runs(base: Path) -> dict[str, tuple[Path, Path]]:
    """Real short runs of this checkout: case -> (run directory, thresholds folder)."""
    thresholds = base / "thresholds"
    thresholds.mkdir(parents=True)
    for req, text in THRESHOLDS.items():
        (thresholds / f"{req}.yaml").write_text(text)
    scenarios = base / "scenarios"
    scenarios.mkdir()
    (scenarios / "same.py").write_text(SCENARIO)
    made = {}
    for case, args in MADE.items():
        out = base / "runs" / case
        cmd = [
            sys.executable,
            "-m",
            "loadgate",
            *args,
            "--scenarios",
            str(scenarios),
            "--thresholds",
            str(thresholds),
            "--out",
            str(out),
        ]
        print(f"same_outputs: making the {case} run: loadgate {' '.join(args)}", flush=True)
        p = subprocess.run(
            cmd, cwd=base, env=env_for(ROOT), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        dirs = sorted(d for d in out.iterdir() if (d / "run.json").exists()) if out.exists() else []
        if p.returncode not in (0, 1, 3) or len(dirs) != 1:
            sys.stderr.write(p.stdout + p.stderr)
            die(f"the {case} run exited {p.returncode} and left {len(dirs)} run directories in {out}")
        print(f"same_outputs:   exit {p.returncode}, {dirs[0]}", flush=True)
        made[case] = (dirs[0], thresholds)
    return made


def given_runs(dirs: list[str], thresholds: str | None) -> dict[str, tuple[Path, Path]]:
    """--from-dirs: case (the directory's name) -> (run directory, thresholds: --thresholds, else the
    folder the run recorded if it still exists, else this checkout's thresholds/)."""
    runs = {}
    for d in dirs:
        path = Path(d).resolve()
        if not (path / "run.json").is_file():
            die(f"{d}: not a run directory (no run.json)")
        recorded = (json.loads((path / "run.json").read_text()).get("options") or {}).get("thresholds")
        chosen = thresholds or (recorded if recorded and os.path.exists(recorded) else str(ROOT / "thresholds"))
        case = path.name if path.name not in runs else f"{path.parent.name}/{path.name}"
        runs[case] = (path, Path(chosen).resolve())
    return runs


def gate_side(
    tree: Path, src: Path, thresholds: Path, stage: Path, neutral: Path, judge: bool
) -> tuple[int, dict[str, bytes | None], str]:
    """Copy ``src`` to ``stage`` (fresh) and re-gate it with ``tree``'s code; (exit code, files, output)."""
    shutil.rmtree(stage.parent, ignore_errors=True)
    stage.parent.mkdir(parents=True)
    shutil.copytree(src, stage)
    for name in FILES:  # what is compared must come from this side's code, not from the copy
        (stage / name).unlink(missing_ok=True)
    if judge:
        cmd = [sys.executable, "-c", JUDGE, str(stage), str(thresholds), json.dumps(CAPACITY_JUDGE)]
    else:
        cmd = [sys.executable, "-m", "loadgate", "gate", str(stage), "--thresholds", str(thresholds)]
    p = subprocess.run(
        cmd, cwd=neutral, env=env_for(tree), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    code = (0 if p.returncode == 0 else 2) if judge else p.returncode  # the judge's verdict is in verdict.json
    files = {n: (stage / n).read_bytes() if (stage / n).exists() else None for n in FILES}
    return code, files, p.stdout + p.stderr


def compare_case(case: str, src: Path, thresholds: Path, ref: Path, base: Path, judge: bool) -> list[tuple]:
    """Rows (case, file, difference or None) of one run directory gated by both codes."""
    neutral = base / "cwd"
    neutral.mkdir(exist_ok=True)
    stage = base / "gated" / case.replace("/", "_") / src.name
    sides = []
    for tree in (ref, ROOT):
        code, files, output = gate_side(tree, src, thresholds, stage, neutral, judge)
        if code not in (0, 1, 3):
            sys.stderr.write(f"same_outputs: {case}: the gate with {tree}'s code exited {code}:\n{output}")
        sides.append((code, files))
    (code_a, files_a), (code_b, files_b) = sides
    rows = [(case, name, compare_bytes(files_a[name], files_b[name])) for name in FILES]
    broken = code_a not in (0, 1, 3) or code_b not in (0, 1, 3)
    rows.append(
        (
            case,
            "exit code",
            f"the gate failed: exit {code_a} vs {code_b} (output above)"
            if broken
            else None
            if code_a == code_b
            else f"{code_a} vs {code_b}",
        )
    )
    return rows


# --- the reference tree --------------------------------------------------------------------------
def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def add_worktree(rev: str, where: Path) -> str:
    try:
        sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        die(f"--ref {rev}: not a commit of {ROOT}; give a branch, tag or sha")
    git("worktree", "add", "--detach", "--quiet", str(where), sha)
    return sha


def remove_worktree(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], capture_output=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)


def print_table(rows: list[tuple]) -> None:
    width = max(len(r[0]) for r in rows)
    print(
        f"{'case':<{width}}  {'file':<12}  {'same bytes':<10}  "
        "first difference (first: REV's code, second: this checkout's)"
    )
    for case, name, diff in rows:
        print(f"{case:<{width}}  {name:<12}  {'identical' if diff is None else 'differs':<10}  {diff or '-'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, metavar="REV", help="revision whose code gates the other side")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (run directories, gated copies)")
    ap.add_argument(
        "--from-dirs", nargs="+", metavar="RUN_DIR", help="compare these run directories instead of making new ones"
    )
    ap.add_argument(
        "--thresholds",
        metavar="PATH",
        help="with --from-dirs: the thresholds both sides gate "
        "with (default: the folder each run recorded, else this checkout's thresholds/)",
    )
    args = ap.parse_args(argv)
    base = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="same-outputs-"))
    base.mkdir(parents=True, exist_ok=True)
    ref = base / "ref-worktree"
    try:
        runs = given_runs(args.from_dirs, args.thresholds) if args.from_dirs else make_runs(base / "made")
        sha = add_worktree(args.ref, ref)
        (base / "cwd").mkdir(exist_ok=True)
        print(f"same_outputs: --ref {args.ref} = {sha[:12]}: {which_loadgate(ref, base / 'cwd')}")
        print(f"same_outputs: this checkout:       {which_loadgate(ROOT, base / 'cwd')}")
        rows = []
        for case, (src, thresholds) in runs.items():
            rows += compare_case(case, src, thresholds, ref, base, judge=False)
            if (src / "capacity.json").exists():
                rows += compare_case(f"{case}/judge", src, thresholds, ref, base, judge=True)
    finally:
        remove_worktree(ref)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print_table(rows)
    same = all(diff is None for _, _, diff in rows)
    print("all identical" if same else "DIFFERENCES found")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""How often does `loadgate compare` flag a regression between two runs of the same target?

Runs PAIRS pairs of real, short `loadgate run`s against the embedded demo target (Locust and the target
share this machine, so run-to-run noise is real), compares each pair with `loadgate compare --json`,
and prints the number of pairs with at least one regression: the false-alarm rate of a whole
comparison (every request and requirement, p50/p95/p99/error rate). With ``--scale 1.4`` the second
run of each pair is 40% slower, which measures the detection rate instead.

    python bench/compare_false_alarms.py                      # 20 pairs, 10 s each, REQ-DEMO-001
    python bench/compare_false_alarms.py --scale 1.4 --pairs 5
    python bench/compare_false_alarms.py --reuse DIR          # re-compare runs kept from before

Takes about 10 minutes for 20 pairs of 10 s runs (start-up and ramp-up included); measured results
are in docs/history-and-compare.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _loadgate(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "loadgate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _run(out: Path, requirement: str, duration: str, scale: float) -> Path:
    before = set(out.iterdir()) if out.exists() else set()
    p = _loadgate(
        "run",
        "--requirement",
        requirement,
        "--duration",
        duration,
        "--out",
        str(out),
        "--target-latency-scale",
        str(scale),
    )
    new = sorted(d for d in set(out.iterdir()) - before if d.is_dir())
    if p.returncode not in (0, 1) or len(new) != 1:
        sys.exit(f"run failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return new[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--requirement", default="REQ-DEMO-001")
    ap.add_argument("--scale", type=float, default=1.0, help="latency scale of the second run of each pair")
    ap.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--reuse", metavar="DIR", help="compare the pairs already in DIR instead of running")
    args = ap.parse_args()

    base = Path(args.reuse or args.out or tempfile.mkdtemp(prefix="loadgate-fa-"))
    started = time.time()
    flagged, lines = 0, []
    for i in range(args.pairs):
        pair = base / f"pair-{i:02d}"
        if args.reuse:
            a, b = (sorted(d for d in (pair / side).iterdir() if d.is_dir())[0] for side in ("a", "b"))
        else:
            a = _run(pair / "a", args.requirement, args.duration, 1.0)
            b = _run(pair / "b", args.requirement, args.duration, args.scale)
        p = _loadgate("compare", str(a), str(b), "--json")
        if p.returncode not in (0, 1):
            sys.exit(f"compare failed (exit {p.returncode}): {p.stderr}")
        doc = json.loads(p.stdout)
        (pair / "compare.json").write_text(p.stdout)
        bad = [r for r in doc["requests"] if r["status"] == "regression"]
        flagged += bool(bad)
        worst = max(
            (r for r in doc["requests"] if r["change"] is not None and r["metric"] != "error_rate"),
            key=lambda r: r["change"],
            default=None,
        )
        line = (
            f"pair {i:2d}: exit {p.returncode}, {len(bad)} regression row(s)"
            + (
                f" (e.g. {bad[0]['name'] or '(all)'} {bad[0]['metric']} {bad[0]['change']:+.1%}, "
                f"CI [{bad[0]['ci'][0]:+.1%}, {bad[0]['ci'][1]:+.1%}])"
                if bad
                else ""
            )
            + (
                f"; largest latency change {worst['name'] or '(all)'} {worst['metric']} {worst['change']:+.1%}"
                if worst
                else ""
            )
        )
        print(line, flush=True)
        lines.append(line)
    what = "detected (regression found)" if args.scale != 1.0 else "false alarms (regression found)"
    print(
        f"\n{what}: {flagged} of {args.pairs} pairs; runs of {args.duration} of {args.requirement}, "
        f"second run at latency scale {args.scale:g}; runs kept in {base}; {time.time() - started:.0f} s"
    )
    print("command: python bench/compare_false_alarms.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The recorder's same-core cost for two builds of loadgate and for its Python listener, alternated pair by pair.

    python bench/recorder_builds.py --old-tree DIR [--rounds 7] [--seconds 20] [--wait 15]

Three builds take turns, one ``bench/recorder_overhead.py --same-core`` pair each (plain Locust and
``loadgate run`` at once on one core; ratio loadgate/plain), the build that goes first rotating each round:

- ``this``: this checkout, its C listener (built in place by ``pip install -e .``);
- ``old``: another checkout, DIR (e.g. ``git worktree add /tmp/old COMMIT``; build its C listener there with
  ``python setup.py build_ext --inplace``), run from DIR with ``PYTHONPATH=DIR``, by that tree's own bench;
- ``python``: this checkout with ``LOADGATE_PURE_PYTHON=1`` (the Python listener).

Before the pairs, one short run of each shows which ``_rowpack`` its Locust process maps and whether the
Python listener is forced, so that a build is never measured as another. Between pairs the bench's wait for
an idle machine is bounded at ``--wait`` seconds (60 in recorder_overhead.py). Prints each pair and, per
build, the median, quartiles and range of the ratios and the median per CPU-second. Everything on 127.0.0.1,
bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORCED = ("PYTHONPATH", "LOADGATE_PURE_PYTHON")


def builds(old: str) -> dict[str, tuple[str, dict[str, str]]]:
    """name: (root whose bench runs ``python -m loadgate`` from it, extra environment)"""
    return {"this": (ROOT, {}), "old": (old, {"PYTHONPATH": old}), "python": (ROOT, {"LOADGATE_PURE_PYTHON": "1"})}


def load_bench(root: str):
    spec = importlib.util.spec_from_file_location(
        f"recorder_overhead_{len(root)}_{abs(hash(root))}", os.path.join(root, "bench", "recorder_overhead.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FORCED}
    env.update(extra)
    return env


def probe(bench, root: str, extra: dict[str, str]) -> list[tuple[str, str | None]]:
    """(the _rowpack file, LOADGATE_PURE_PYTHON) of the Locust process of a 6 s run of this build."""
    tmp = tempfile.mkdtemp(prefix="loadgate-builds-probe-")
    os.makedirs(os.path.join(tmp, "thresholds"))
    with open(os.path.join(tmp, "thresholds", f"{bench.REQUIREMENT}.yaml"), "w") as f:
        f.write(bench.THRESHOLDS)
    seen = set()
    with bench.Nginx() as nginx:
        cmd = [
            sys.executable,
            "-m",
            "loadgate",
            "run",
            "--requirement",
            bench.REQUIREMENT,
            "--scenarios",
            bench.LOCUSTFILE,
            "--thresholds",
            os.path.join(tmp, "thresholds"),
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--duration",
            "6s",
            "--host",
            nginx.url,
            "--out",
            os.path.join(tmp, "out"),
        ]
        proc = subprocess.Popen(
            cmd, cwd=root, env=environment(extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 90:
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(OSError, psutil.Error):
                    with open(f"/proc/{child.pid}/maps") as f:
                        maps = f.read()
                    forced = child.environ().get("LOADGATE_PURE_PYTHON")
                    seen.update((line.split()[-1], forced) for line in maps.splitlines() if "_rowpack" in line)
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return sorted(seen)


def one_pair(bench, extra: dict[str, str], args) -> str | None:
    """The bench's result line for one same-core pair of this build, or None when its runs did not overlap."""
    bench.wait_quiet = lambda seconds=args.wait: _wait_quiet(seconds)
    os.sched_setaffinity(0, ALL_CORES)  # (same_core() moves this process off the generators' core each time)
    saved, env = dict(os.environ), environment(extra)
    os.environ.clear()
    os.environ.update(env)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            bench.same_core(
                argparse.Namespace(
                    pairs=1, seconds=args.seconds, users=args.users, pin=False, same_core=True, minutes=None, keep=False
                )
            )
    except SystemExit as e:  # the two runs overlapped at full load too briefly: reported, not counted
        print(f"   (skipped: {e})")
        return None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return next(line for line in out.getvalue().splitlines() if line.split()[:1] == ["1"])


def _wait_quiet(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and psutil.cpu_percent(interval=1.0) > 10.0:
        pass


ALL_CORES = os.sched_getaffinity(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old-tree", required=True, help="another checkout of loadgate, its C listener built in place")
    p.add_argument("--rounds", type=int, default=7, help="pairs per build (default 7)")
    p.add_argument("--seconds", type=int, default=20, help="run length of each side (default 20)")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--wait", type=float, default=15.0, help="longest wait for an idle machine before a pair (s)")
    args = p.parse_args(argv)
    old = os.path.abspath(args.old_tree)
    if not os.path.isfile(os.path.join(old, "bench", "recorder_overhead.py")):
        p.error(f"--old-tree {old}: no bench/recorder_overhead.py there; give a checkout of loadgate")
    if len(ALL_CORES) < 2:
        p.error("the same-core method needs 2 cores")
    named = builds(old)
    benches = {name: load_bench(root) for name, (root, _extra) in named.items()}
    for name, (root, extra) in named.items():
        print(f"{name:6s} Locust process maps: {probe(benches[name], root, extra)}", flush=True)
    ratios: dict[str, list[float]] = {name: [] for name in named}
    per_cpu: dict[str, list[float]] = {name: [] for name in named}
    order = list(named)
    for r in range(args.rounds):
        for name in order[r % 3 :] + order[: r % 3]:
            line = one_pair(benches[name], named[name][1], args)
            if line is None:
                continue
            cols = line.split()
            ratios[name].append(float(cols[3]))
            per_cpu[name].append(float(cols[6]))
            print(f"round {r + 1:>2} {name:6s} {line}", flush=True)
    print()
    for name, rs in ratios.items():
        if not rs:
            print(f"{name:6s} no pair counted")
            continue
        q = statistics.quantiles(rs, n=4) if len(rs) >= 2 else [rs[0]] * 3
        print(
            f"{name:6s} median {statistics.median(rs):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}, range {min(rs):.3f}-"
            f"{max(rs):.3f}, {len(rs)} pairs); per CPU-second {statistics.median(per_cpu[name]):.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

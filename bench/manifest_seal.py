"""What sealing a run directory costs, against the analysis of the same samples.

    python bench/manifest_seal.py [--samples 10M] [--reps 3] [--dir /tmp/loadgate-bench]

On a generated samples file (``bench/gen_samples.py``), in one process, alternately and ``--reps`` times:

- the analysis ``loadgate analyze --json`` / ``loadgate gate`` runs (:func:`loadgate.analysis.summary.summarize`
  over the file, per-second series included): the baseline;
- a first seal of a run directory holding that file (:class:`loadgate.data.manifest.Sealer`: hash every file,
  write the manifest), as at the end of ``loadgate run``;
- a re-seal (as ``loadgate gate`` / ``report`` do: compare with the old manifest, stage, close; an unchanged
  samples file is hashed once);
- ``loadgate verify`` (:func:`loadgate.data.manifest.verify`).

Prints the median wall time of each and its ratio to the analysis. The run directory is a hard link
(or copy) of the generated file in a temporary folder; nothing touches the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gen_samples import DEFAULT_DIR, ensure, parse_count  # noqa: E402

from loadgate.analysis.summary import COLUMNS, summarize  # noqa: E402
from loadgate.data import rundir  # noqa: E402
from loadgate.data.manifest import Sealer, verify  # noqa: E402
from loadgate.data.samples import read_samples  # noqa: E402


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=parse_count, default=10_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--dir", default=DEFAULT_DIR)
    args = p.parse_args(argv)
    source = ensure(args.samples, directory=args.dir)
    work = tempfile.mkdtemp(prefix="loadgate-seal-")
    try:
        run_dir = os.path.join(work, "run")
        os.mkdir(run_dir)
        target = os.path.join(run_dir, rundir.SAMPLES)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        for name in (rundir.SUMMARY, rundir.VERDICT):
            rundir.write_json(os.path.join(run_dir, name), {"bench": name})
        times: dict[str, list[float]] = {"analysis": [], "first seal": [], "re-seal": [], "verify": []}
        for _ in range(args.reps):
            rundir.write_json(os.path.join(run_dir, rundir.RUN), {"schema": "loadgate.run/1", "requirements": []})
            times["analysis"].append(
                timed(lambda: summarize(read_samples(source, list(COLUMNS), dictionary=True), None, series=True))
            )

            def seal():
                s = Sealer(run_dir, ["bench"], None)
                s.stage([])
                s.close()

            times["first seal"].append(timed(seal))  # no manifest yet: every file hashed once
            times["re-seal"].append(timed(seal))  # old manifest compared, samples hashed once, reused twice
            result = []
            times["verify"].append(timed(lambda out=result: out.append(verify(run_dir))))
            assert not result[0].problems, result[0].problems
        size = os.path.getsize(source)
        base = statistics.median(times["analysis"])
        print(
            f"manifest seal bench: {args.samples:,} samples, samples.parquet {size / 1e6:,.0f} MB, "
            f"{args.reps} reps, medians"
        )
        for name, values in times.items():
            m = statistics.median(values)
            print(
                f"  {name:10s} {m:7.3f} s   ratio to the analysis {m / base:.3f}"
                + (f"   ({size / m / 1e6:,.0f} MB/s)" if name != "analysis" else "")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

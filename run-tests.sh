#!/usr/bin/env bash
# Runs the test suite: creates .venv with loadgate and its test extras on first use, then pytest.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k gate -x).
# Before pytest, always: `ruff check` (lint, settings in pyproject.toml), `ruff format --check` (the
# layout `ruff format loadgate tests bench` gives) and `mypy` (the packages and strictness in
# pyproject.toml's [tool.mypy]); a finding stops the run before any test starts. They take seconds.
# LOADGATE_SKIP_LINT=1 skips them (e.g. when iterating on one test).
# Three pytest workers (pytest-xdist), a test file to each at a time (--dist loadfile, so a file's module
# fixtures, e.g. its real runs, are made once): most tests wait on real load runs' wall-clock time (the
# suite keeps two cores about half busy with two workers), so three workers take the suite from ~12 to
# ~9 minutes on two cores. LOADGATE_TEST_WORKERS=N sets the number; 0 runs the
# suite in this one process (for --pdb, or -s to watch a test's output).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
EXTRAS=test source "$here/scripts/ensure-venv.sh"
cd "$here"
workers="${LOADGATE_TEST_WORKERS:-3}"
case "$workers" in
  ''|*[!0-9]*) echo "run-tests.sh: error: LOADGATE_TEST_WORKERS=$workers is not a number of workers; give 0, 1, 2, ..." >&2
               exit 2 ;;
esac
if [ "${LOADGATE_SKIP_LINT:-0}" != 1 ]; then
  "$LOADGATE_PY" -m ruff check loadgate tests bench
  "$LOADGATE_PY" -m ruff format --check loadgate tests bench
  "$LOADGATE_PY" -m mypy
fi
parallel=()
[ "$workers" -gt 0 ] && parallel=(-n "$workers" --dist loadfile)
exec "$LOADGATE_PY" -m pytest ${parallel[@]+"${parallel[@]}"} "$@"

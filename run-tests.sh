#!/usr/bin/env bash
# Runs the test suite: creates .venv with loadgate and its test extras on first use, then pytest.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k gate -x).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
EXTRAS=test source "$here/scripts/ensure-venv.sh"
cd "$here"
exec "$LOADGATE_PY" -m pytest "$@"

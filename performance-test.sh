#!/usr/bin/env bash
# Pipeline entry point: runs a gated load test and exits with the verdict's code.
#
#   ./performance-test.sh --users=1000 --requirement=REQ-PERF-001 [--host=URL] [--duration=2m]
#                         [--spawn-rate=100] [--warmup=15s] [--workers=N] [--out=DIR] [--strict]
#
# Exit codes: 0 pass, 1 gate failed, 2 usage or configuration error, 3 inconclusive.
# On a fresh machine it first creates .venv here and installs loadgate into it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

args=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --users=*|--requirement=*|--host=*|--duration=*|--spawn-rate=*|--warmup=*|--workers=*|--out=*|\
    --scenarios=*|--thresholds=*|--strict) args+=("$a") ;;
    *) echo "performance-test.sh: error: unknown option '$a'; expected --users=N --requirement=REQ-… [--host=URL] [--duration=2m] [--spawn-rate=R] [--warmup=15s] [--workers=N] [--out=DIR] [--strict]" >&2
       exit 2 ;;
  esac
done

if ! source "$here/scripts/ensure-venv.sh"; then
  echo "performance-test.sh: error: could not set up $here/.venv; see the pip output above" >&2
  exit 2
fi
cd "$here"
exec "$LOADGATE_PY" -m loadgate run "${args[@]}"

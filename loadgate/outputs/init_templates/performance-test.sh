#!/usr/bin/env bash
# Performance gate: a load test judged against thresholds/*.yaml; exits with the verdict's code.
#
#   scripts/performance-test.sh --users=1000 --requirement=REQ-PERF-001 [--host=URL] [--duration=2m]
#                               [--spawn-rate=100] [--warmup=15s] [--workers=N] [--out=DIR] [--strict]
#   scripts/performance-test.sh check [--format=github]    (thresholds, scenarios and their traceability)
#   scripts/performance-test.sh trace [--since=REF] [--format=github]   (commits reference requirement IDs)
#
# Exit codes: 0 pass, 1 gate failed, 2 usage or configuration error, 3 inconclusive.
# Results: reports/<UTC time>-<requirement>/ (report.html, junit.xml, summary.md, verdict.json, ...).
# On a machine without it (a fresh CI runner), loadgate is installed into .loadgate/venv first, from
# LOADGATE_SPEC: a package name (loadgate==0.1.0), a VCS URL (git+https://host/org/loadgate.git@v0.1.0)
# or a wheel's path. LOADGATE_VENV moves the environment. Written by 'loadgate init' (loadgate @VERSION@).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
me="scripts/performance-test.sh"
# What 'loadgate init' was run with; LOADGATE_SPEC overrides it (e.g. a CI variable).
default_spec=@SPEC@
spec="${LOADGATE_SPEC:-$default_spec}"
venv="${LOADGATE_VENV:-$root/.loadgate/venv}"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

command=run
if [ "${1:-}" = "check" ] || [ "${1:-}" = "trace" ]; then command="$1"; shift; fi
args=()
for a in "$@"; do
  case "$command:$a" in
    *:-h|*:--help) usage; exit 0 ;;
    run:--users=*|run:--requirement=*|run:--host=*|run:--duration=*|run:--spawn-rate=*|run:--warmup=*|\
    run:--workers=*|run:--out=*|run:--scenarios=*|run:--thresholds=*|run:--strict|run:--baseline=*) args+=("$a") ;;
    check:--format=*|check:--scenarios=*|check:--thresholds=*) args+=("$a") ;;
    trace:--since=*|trace:--format=*|trace:--allow=*|trace:--pattern=*|trace:--merges|trace:--ids|\
    trace:--scenarios=*|trace:--thresholds=*|trace:--out=*) args+=("$a") ;;
    run:*) echo "$me: error: unknown option '$a'; expected --users=N --requirement=REQ-… [--host=URL] [--duration=2m] [--spawn-rate=R] [--warmup=15s] [--workers=N] [--out=DIR] [--strict]" >&2
           exit 2 ;;
    check:*) echo "$me: error: unknown option '$a' for check; expected [--format=plain|github] [--scenarios=PATH] [--thresholds=PATH]" >&2
             exit 2 ;;
    trace:*) echo "$me: error: unknown option '$a' for trace; expected [--since=REF] [--format=plain|github|json] [--allow=REGEX] [--pattern=REGEX] [--merges] [--ids]" >&2
             exit 2 ;;
  esac
done

find_python() {
  for p in python3 python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  echo "$me: error: Python 3.10 or newer is needed (python3 not found or too old); install it and retry" >&2
  return 2
}

# Install (or update) loadgate in $venv when the spec changed since the last install, or the wheel
# it names is newer: a runner that caches .loadgate/ skips the install.
bootstrap() {
  case "$spec" in
    *://*) ;;  # a URL: pip fetches it
    /*|./*|../*|*.whl)
      if [ ! -e "$spec" ]; then
        echo "$me: error: LOADGATE_SPEC '$spec' does not exist on this machine; set LOADGATE_SPEC to a package" \
             "name (loadgate==@VERSION@), a VCS URL (git+https://…) or the path of a wheel" >&2
        exit 2
      fi ;;
  esac
  local stamp="$venv/.loadgate-spec"
  if [ ! -x "$venv/bin/python" ]; then
    local py
    py="$(find_python)" || exit 2
    echo "$me: creating $venv and installing loadgate from $spec" >&2
    if ! "$py" -m venv "$venv" >&2; then
      echo "$me: error: could not create $venv; install Python's venv module (Debian/Ubuntu: apt-get install python3-venv)" >&2
      exit 2
    fi
    # keep the environment out of git (the default place is inside the repository)
    [ -e "$venv/../.gitignore" ] || [ -n "${LOADGATE_VENV:-}" ] || printf '*\n' > "$venv/../.gitignore"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$spec" ] || { [ -e "$spec" ] && [ "$spec" -nt "$stamp" ]; }; then
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" >&2; then
      echo "$me: error: could not install loadgate from '$spec' into $venv; see pip's output above" >&2
      exit 2
    fi
    printf '%s\n' "$spec" > "$stamp"
  fi
}

bootstrap
cd "$root"
exec "$venv/bin/python" -m loadgate "$command" ${args[@]+"${args[@]}"}

#!/usr/bin/env bash
# Validate Requirements Traceability: every commit since REF references a requirement ID (REQ-…, OR-…) that
# a threshold file, a scenario tag or a Kubernetes requirement-id annotation defines, and names the
# requirement whose threshold or scenario file it changes.
#
#   scripts/validate-requirements.sh [--since=REF] [--format=plain|github|json] [--allow=REGEX] [--merges]
#
# REF: --since, else $LOADGATE_TRACE_SINCE (the CI files set it to the pull request's base or the commit
# before the push), else loadgate's default: the commit of the last passing run in reports/history.sqlite,
# else the merge base with the default branch. Bot commits (author matching $LOADGATE_TRACE_ALLOW, default
# '\[bot\]'; empty: none) and merge commits are skipped. Needs the whole history (not a shallow clone).
# Exit codes: 0 every commit traced, 1 some are not, 2 usage error (not a repository, unknown REF).
# Runs 'loadgate trace' through scripts/performance-test.sh (installs loadgate when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
me="scripts/validate-requirements.sh"
since="${LOADGATE_TRACE_SINCE:-}"
allow="${LOADGATE_TRACE_ALLOW-\[bot\]}"
args=()
for a in "$@"; do
  case "$a" in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --since=*) since="${a#--since=}" ;;
    --format=*|--allow=*|--pattern=*|--merges) args+=("$a") ;;
    *) echo "$me: error: unknown option '$a'; expected [--since=REF] [--format=plain|github|json] [--allow=REGEX] [--pattern=REGEX] [--merges]" >&2
       exit 2 ;;
  esac
done
case "$since" in
  *[!0]*) ;;      # a commit, a branch, a tag
  *) since="" ;;  # empty, or git's all-zero "no commit before" of a new branch's first push
esac
if [ -n "$since" ]; then args+=("--since=$since"); fi
if [ -n "$allow" ]; then args+=("--allow=$allow"); fi
exec "$root/scripts/performance-test.sh" trace ${args[@]+"${args[@]}"}

#!/usr/bin/env bash
# Sourced by performance-test.sh and run-tests.sh: make sure .venv exists with loadgate installed
# (editable, so it always runs this checkout). EXTRAS may name pip extras, e.g. EXTRAS=test.
# Sets LOADGATE_PY to the interpreter to use.
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="$_root/.venv"
_spec="$_root"
[ -n "${EXTRAS:-}" ] && _spec="$_root[$EXTRAS]"
_stamp="$_venv/.loadgate-installed${EXTRAS:+-$EXTRAS}"

_find_python() {
  for p in python3 python; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  echo "loadgate: error: Python 3.10 or newer is needed (python3 not found or too old); install it and retry" >&2
  return 2
}

if [ ! -x "$_venv/bin/python" ]; then
  _py="$(_find_python)"
  echo "loadgate: first run: creating $_venv and installing loadgate into it" >&2
  "$_py" -m venv "$_venv" >&2
fi
# Reinstall when pyproject.toml changed since the last install (new dependencies), or setup.py or the
# C listener's source (an editable install builds loadgate/plugin/_rowpack.c in place).
if [ ! -f "$_stamp" ] || [ "$_root/pyproject.toml" -nt "$_stamp" ] || [ "$_root/setup.py" -nt "$_stamp" ] \
    || [ "$_root/loadgate/plugin/_rowpack.c" -nt "$_stamp" ]; then
  # (pip's notes about this machine's unused local index folders are noise: filter them out)
  "$_venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$_spec" 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; } >&2
  touch "$_stamp"
fi
LOADGATE_PY="$_venv/bin/python"
export LOADGATE_PY

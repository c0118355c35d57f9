#!/usr/bin/env bash
# ctest_clean.sh PRESET [CTEST ARGS...]: runs `ctest --preset PRESET` with TMPDIR set to a folder
# of this run's own, then fails if the suite left anything there, or left new frugal* entries in
# the system temp folder (a test that ignored TMPDIR). Every test must remove what it wrote; this
# is where that is checked.
set -euo pipefail
preset=$1
shift

sys_tmp=${TMPDIR:-/tmp}
sys_tmp=${sys_tmp%/}
list_frugal() { find "$sys_tmp" -maxdepth 1 -name 'frugal*' -printf '%f\n' 2>/dev/null | sort; }
before=$(list_frugal)

run_tmp=$(mktemp -d "$sys_tmp/ctest-run.XXXXXX")
trap 'rm -rf "$run_tmp"' EXIT

rc=0
env -u TEST_TMPDIR TMPDIR="$run_tmp" ctest --preset "$preset" "$@" || rc=$?

left=$(find "$run_tmp" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
if [ -n "$left" ]; then
  echo "ctest_clean: the tests left these in their temp folder (every test must remove what it wrote):" >&2
  echo "$left" | sed 's/^/  /' >&2
  rc=1
fi
new=$(comm -13 <(echo "$before") <(list_frugal) | sed '/^$/d')
if [ -n "$new" ]; then
  echo "ctest_clean: new entries in $sys_tmp during the run (a test ignored TMPDIR?):" >&2
  echo "$new" | sed 's/^/  /' >&2
  rc=1
fi
exit $rc

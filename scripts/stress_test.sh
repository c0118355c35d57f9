#!/usr/bin/env bash
# stress_test.sh PRESET ROUNDS JOBS: the whole unit suite ROUNDS times in a row, JOBS test
# processes at a time (more than the cores, so tests overlap in every order), random order each
# round; stops at the first failing round. Each round is checked for leftovers like `make test`.
set -euo pipefail
preset=$1 rounds=$2 jobs=$3
cd "$(dirname "$0")/.."
start=$(date +%s)
for ((r = 1; r <= rounds; r++)); do
  t0=$(date +%s)
  if ! bash scripts/ctest_clean.sh "$preset" -j"$jobs" --schedule-random --label-exclude fuzz \
      >"build/$preset/stress_round.log" 2>&1; then
    grep -E "Failed|\*\*\*|ctest_clean" "build/$preset/stress_round.log" >&2 || true
    echo "stress-test: round $r of $rounds failed; the whole log is build/$preset/stress_round.log" >&2
    exit 1
  fi
  echo "stress-test: round $r of $rounds passed ($(grep -Eo "out of [0-9]+" "build/$preset/stress_round.log" | tail -1 | sed "s/out of //") tests, $(($(date +%s) - t0)) s)"
done
echo "stress-test: $rounds rounds passed, -j$jobs, in $(($(date +%s) - start)) s"

#!/usr/bin/env bash
# The real `frugal` binary under mpirun (docs/PARALLEL.md), on the shipped tiny model:
#   1. perplexity with 2 processes (expert parallel, then 2 pipeline stages) prints the same
#      figure as one process, and only rank 0 writes standard output; chat, whose input reaches
#      rank 0 alone, replies as one process does;
#   2. a process killed mid-run (kill -9) stops the whole run: mpirun exits non-zero within 60 s
#      and names the rank, never a hang; a process stopped (SIGSTOP) makes the others give up
#      after their deadline (FRUGAL_PARALLEL_TIMEOUT_S) and stop the run;
#   3. a process running a different binary (a copy with one byte appended) is refused at
#      start-up by an error naming its rank.
# Skips (exit 0, with the reason) only where mpirun cannot start at all.
#
#   scripts/mpi_cli_test.sh FRUGAL_BIN
set -uo pipefail
frugal=$1
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/models/tiny-v4
text=$root/tests/data/heldout_excerpt.txt
source "$root/scripts/mpi_common.sh" 2  # sets mpi; skips where mpirun cannot start
work=$(mktemp -d "${TMPDIR:-/tmp}/frugal-mpi-cli-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The process of rank 1 of the long perplexity run in the background ($runner), once it has
# loaded its shard; nothing (and the run stopped) when it does not appear.
loaded_rank1() {
  local p
  for _ in $(seq 200); do
    p=$(mpi_rank_pid "frugal perplexity -m $model -f $work/long.txt" 1)
    [ -n "$p" ] && grep -q "rank 1 of 2" "$work/out" && { echo "$p"; return; }
    sleep 0.1
  done
  kill "$runner"
}

# 1. Same perplexity as one process; one copy of the output.
one=$("$frugal" perplexity -m "$model" -f "$text" -t 1 2>/dev/null) || fail "one process: exit $?"
for flags in "--parallel-experts" "--pipeline-stages 2"; do
  # shellcheck disable=SC2086
  out=$(timeout 120 "${mpi[@]}" -np 2 "$frugal" perplexity -m "$model" -f "$text" -t 1 $flags \
        2>"$work/err") || { cat "$work/err" >&2; fail "mpirun -np 2 ($flags): exit $?"; }
  [ "$out" = "$one" ] || fail "$flags: printed '$out', one process '$one'"
  grep -q "rank 1 of 2" "$work/err" || fail "$flags: rank 1 did not report its share"
done
echo "perplexity under mpirun -np 2 equals one process's: $one"

# Chat: rank 0's input lines reach every process; two turns, sampled, the same reply as alone.
chat_in=$'To be, or not to be\nWhat light through yonder window breaks'
chat_flags=(-m "$model" -t 1 -n 24 --temp 0.8 --seed 7 --spec off)  # auto is off under mpirun
one=$(printf '%s\n' "$chat_in" | "$frugal" chat "${chat_flags[@]}" 2>/dev/null) ||
  fail "chat, one process: exit $?"
out=$(printf '%s\n' "$chat_in" | timeout 120 "${mpi[@]}" -np 2 "$frugal" chat "${chat_flags[@]}" \
      --parallel-experts 2>"$work/err") || { cat "$work/err" >&2; fail "chat under mpirun: exit $?"; }
[ "$out" = "$one" ] || fail "chat under mpirun -np 2 replied '$out', one process '$one'"
[ "$(printf '%s\n' "$out" | wc -l)" -ge 2 ] || fail "chat printed fewer than two replies: '$out'"
echo "chat under mpirun -np 2 gives one process's replies"

# 2. A process killed mid-run stops the run. A long input (the excerpt 40 times) keeps it busy.
for _ in $(seq 40); do cat "$text"; done >"$work/long.txt"
timeout 120 "${mpi[@]}" -np 2 "$frugal" perplexity -m "$model" -f "$work/long.txt" -t 1 \
  --parallel-experts >"$work/out" 2>&1 &
runner=$!
victim=$(loaded_rank1)
[ -n "$victim" ] || fail "rank 1's process not found"
kill -9 "$victim"
start=$(date +%s)
wait "$runner"
rc=$?
elapsed=$(($(date +%s) - start))
[ "$rc" -ne 0 ] || fail "mpirun exited 0 after rank 1 was killed"
[ "$rc" -ne 124 ] || fail "mpirun hung after rank 1 was killed (timeout)"
[ "$elapsed" -le 60 ] || fail "mpirun took ${elapsed} s to stop after rank 1 was killed"
grep -Eqi "rank 1|\[[0-9]+,1\],1" "$work/out" || { cat "$work/out" >&2; fail "no message names rank 1"; }
echo "rank 1 killed: mpirun stopped in ${elapsed} s (exit $rc) naming it"

# 2b. A process stopped without dying (SIGSTOP: a hung disk looks the same): the others give up
# waiting after FRUGAL_PARALLEL_TIMEOUT_S and stop the run, saying what they waited for.
FRUGAL_PARALLEL_TIMEOUT_S=3 timeout 120 "${mpi[@]}" -x FRUGAL_PARALLEL_TIMEOUT_S -np 2 "$frugal" \
  perplexity -m "$model" -f "$work/long.txt" -t 1 --parallel-experts >"$work/out" 2>&1 &
runner=$!
victim=$(loaded_rank1)
[ -n "$victim" ] || fail "rank 1's process not found"
kill -STOP "$victim"
start=$(date +%s)
wait "$runner"
rc=$?
elapsed=$(($(date +%s) - start))
kill -KILL "$victim" 2>/dev/null
[ "$rc" -ne 0 ] || fail "mpirun exited 0 with rank 1 stopped"
[ "$rc" -ne 124 ] || fail "mpirun hung with rank 1 stopped (timeout)"
grep -q "another process is stuck" "$work/out" || { cat "$work/out" >&2; fail "no message says why"; }
echo "rank 1 stopped (SIGSTOP): rank 0 gave up after the 3 s deadline, run stopped in ${elapsed} s"

# 3. A different binary on rank 1.
cp "$frugal" "$work/frugal-other"
printf 'x' >>"$work/frugal-other"
out=$(timeout 120 "${mpi[@]}" -np 1 "$frugal" perplexity -m "$model" -f "$text" -t 1 \
      --parallel-experts : -np 1 "$work/frugal-other" perplexity -m "$model" -f "$text" -t 1 \
      --parallel-experts 2>&1) && fail "a different binary on rank 1 was accepted"
echo "$out" | grep -q "rank 1 (.*) runs a different frugal binary" ||
  { echo "$out" >&2; fail "the error does not name rank 1's binary"; }
echo "a different binary on rank 1 is refused at start-up"

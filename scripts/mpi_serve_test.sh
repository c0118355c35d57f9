#!/usr/bin/env bash
# `frugal serve` under mpirun (docs/PARALLEL.md) on the shipped tiny model: rank 0 serves on a free
# loopback port and hands its steps to rank 1. The same requests to a one-process server and to
# the 2-process server (expert parallel, then 2 pipeline stages) must get the same replies: greedy
# completions, two at once (a batched step), and a chat sent twice with a system prompt long enough
# to be restored from the prefix cache the second time (`cached_tokens` > 0). Then SIGTERM to
# rank 0's process (mpirun itself would kill the job): it drains, the other process stops with
# it, and mpirun exits 0. Skips (exit 0, with the reason) only where mpirun
# cannot start.
#
#   scripts/mpi_serve_test.sh FRUGAL_BIN
set -uo pipefail
frugal=$1
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/models/tiny-v4
source "$root/scripts/mpi_common.sh" 2  # sets mpi; skips where mpirun cannot start
id="mpi-serve-test-$$"  # the model id the requests name, and how leftovers are found
work=$(mktemp -d "${TMPDIR:-/tmp}/frugal-mpi-serve-XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  pkill -KILL -f -- "--model-id $id" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/log" ] && tail -20 "$work/log" >&2; exit 1; }

# Starts a server and waits for its "listening on" line: start "EXTRA FLAGS" COMMAND... (the
# command that runs frugal: the binary, or mpirun and its arguments and the binary).
start() {
  local extra=$1
  shift
  # shellcheck disable=SC2086
  "$@" serve -m "$model" --host 127.0.0.1 --port 0 -t 1 --parallel 2 --prefix-cache 64MiB \
    --model-id "$id" $extra >"$work/log" 2>&1 &
  server=$!
  for _ in $(seq 300); do
    url=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$work/log" | sed 's/listening on //')
    [ -n "$url" ] && return 0
    kill -0 "$server" 2>/dev/null || fail "the server exited: $(cat "$work/log")"
    sleep 0.1
  done
  fail "the server did not start listening"
}
# The process of rank 0 under mpirun ($server itself when alone): the one that serves.
rank0() {
  local p
  p=$(mpi_rank_pid "--model-id $id" 0)
  echo "${p:-$server}"
}
stop() {  # SIGTERM to rank 0: it drains, tells the others to stop, and all exit 0
  kill -TERM "$(rank0)"
  local rc=0
  timeout 60 tail --pid="$server" -f /dev/null || fail "the server did not stop within 60 s"
  wait "$server" || rc=$?
  server=
  [ "$rc" -eq 0 ] || fail "the server exited $rc after SIGTERM"
}
post() { curl -sS --max-time 120 -H 'Content-Type: application/json' -d "$2" "$url$1"; }
# field FILE PYTHON-EXPRESSION-OF-j: a value of a JSON reply (python3 is in scripts/setup.sh).
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps($2))" "$1"; }

system=$(printf 'You are a player in a company of actors. %.0s' $(seq 40))
requests() {  # the replies, one JSON per line, the usage's cached_tokens kept for the check
  post /v1/completions '{"model":"'"$id"'","prompt":"ROMEO:","max_tokens":16,"temperature":0}' >"$work/r"
  field "$work/r" 'j["choices"][0]["text"]'
  post /v1/completions '{"model":"'"$id"'","prompt":"JULIET:","max_tokens":16,"temperature":0}' >"$work/a" &
  post /v1/completions '{"model":"'"$id"'","prompt":"KING RICHARD:","max_tokens":16,"temperature":0}' >"$work/b"
  wait
  field "$work/a" 'j["choices"][0]["text"]'
  field "$work/b" 'j["choices"][0]["text"]'
  for turn in 1 2; do
    post /v1/chat/completions "{\"model\":\"$id\",\"messages\":[{\"role\":\"system\",\"content\":\"$system\"},
      {\"role\":\"user\",\"content\":\"Speak, turn $turn\"}],\"max_tokens\":12,\"temperature\":0}" \
      >"$work/chat$turn"
    field "$work/chat$turn" 'j["choices"][0]["message"]["content"]'
  done
}
start "" "$frugal"
one=$(requests) || fail "requests to one process"
stop
for flags in "--parallel-experts" "--pipeline-stages 2"; do
  start "$flags" "${mpi[@]}" -np 2 "$frugal"
  two=$(requests) || fail "requests under mpirun ($flags)"
  cached=$(field "$work/chat2" '(j.get("usage", {}).get("prompt_tokens_details") or {}).get("cached_tokens", 0)')
  stop
  [ "$two" = "$one" ] || fail "$flags: replies differ:
$two
one process:
$one"
  [ "$cached" -gt 0 ] || fail "$flags: the second chat restored no prefix (cached_tokens $cached)"
  echo "serve under mpirun -np 2 ($flags): the replies of one process; prefix restored ($cached tokens); SIGTERM drained both"
done

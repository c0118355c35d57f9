#!/usr/bin/env bash
# Prefill A/B of frugal binaries on one model, alternated as processes (the machine's drift hits
# every binary alike): each round runs every variant at every prompt length, one `frugal bench`
# process each (its own median of --reps), and appends one JSON line per run to $LOG.
#
#   VARIANTS="old=/path/to/old/frugal new=build/release/src/cli/frugal" \
#   MODEL=/path/to/flash2 CASES="512 8192" ROUNDS=3 REPS=2 LOG=ab.jsonl bench/prefill_ab.sh
#
# A variant's command may carry options after `bench` through a wrapper script (e.g. one that
# execs `frugal "$@" --act-quant`). Summarise with bench/prefill_ab_summary.py LOG.
set -u
: "${VARIANTS:?set VARIANTS=\"name=command ...\"}" "${MODEL:?set MODEL=model directory}"
LOG=${LOG:-prefill_ab.jsonl}
for r in $(seq 1 "${ROUNDS:-3}"); do
  for v in $VARIANTS; do
    name=${v%%=*}
    cmd=${v#*=}
    for p in ${CASES:-512 8192}; do
      out=$($cmd bench -m "$MODEL" --prompt "$p" --gen 0 --reps "${REPS:-2}" --json --weights-in-ram \
        --no-scaling --no-kernels --random-tokens 2>/dev/null)
      printf '{"round": %d, "variant": "%s", "case": "%s", "load": "%s", "result": %s}\n' \
        "$r" "$name" "$p" "$(cut -d' ' -f1 /proc/loadavg)" "${out:-null}" >> "$LOG"
    done
  done
done
echo "$LOG"

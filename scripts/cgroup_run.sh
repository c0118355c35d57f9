#!/usr/bin/env bash
# cgroup_run.sh [--report FILE] LIMIT -- CMD [ARGS...]: runs CMD in a fresh memory cgroup limited
# to LIMIT (8G, 512M, 1.5G, 3GiB or bytes; K/M/G/T are powers of 1024), then prints on stderr the
# group's peak usage and whether the kernel OOM-killed anything in it, removes the group and exits
# with CMD's status. Needs root. docs/STREAMING.md.
#
#   cgroup v2 (where its memory controller is present): a group beside or below the caller's,
#     memory.max = LIMIT, memory.swap.max = 0; peak from memory.peak (Linux >= 5.19), OOM kills
#     from memory.events.
#   cgroup v1 (these machines): <memory mount>/<caller's group>/frugal-<pid>, memory.limit_in_bytes
#     = LIMIT (and memory.memsw.limit_in_bytes where swap accounting exists); peak from
#     memory.max_usage_in_bytes, memory.failcnt, OOM kills from memory.oom_control (oom_kill).
#
# The group is made below the caller's own memory group where the kernel allows it, so any limit
# above still applies. Page cache that CMD's reads cause is charged to the group (and reclaimed
# within it at the limit), as is everything CMD allocates. Nothing global is touched: no cache
# drop, no sysctl. --report FILE also writes the figures as one JSON object.
set -euo pipefail

usage() {
  echo "usage: $0 [--report FILE] LIMIT -- CMD [ARGS...]" >&2
  exit 2
}

report=""
if [ "${1:-}" = "--report" ]; then
  [ $# -ge 2 ] || usage
  report=$2
  shift 2
fi
if [ $# -lt 3 ] || [ "$2" != "--" ]; then usage; fi
limit_text=$1
shift 2

# LIMIT -> bytes, with the rules of frugal's parse_size (engine/budget.h).
to_bytes() {
  local t=$1
  if ! [[ $t =~ ^([0-9]+)(\.[0-9]+)?([KkMmGgTt](iB|ib)?|B)?$ ]]; then
    echo "cgroup_run: LIMIT: expected e.g. 8G, 8GiB, 512M, 1.5G or bytes, got '$t'" >&2
    exit 2
  fi
  local unit=${BASH_REMATCH[3]:-B}
  local shift_bits=0
  case ${unit:0:1} in
    K | k) shift_bits=10 ;; M | m) shift_bits=20 ;; G | g) shift_bits=30 ;; T | t) shift_bits=40 ;;
  esac
  if [ -n "${BASH_REMATCH[2]}" ] && [ $shift_bits -eq 0 ]; then
    echo "cgroup_run: LIMIT: a number of bytes must be whole, got '$t'" >&2
    exit 2
  fi
  awk -v n="${BASH_REMATCH[1]}${BASH_REMATCH[2]}" -v s=$shift_bits \
    'BEGIN { v = int(n * 2 ^ s); if (v <= 0) exit 1; printf "%.0f\n", v }' || {
    echo "cgroup_run: LIMIT must be positive, got '$t'" >&2
    exit 2
  }
}
limit=$(to_bytes "$limit_text")

human() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u, " "); i = 1;
  while (b >= 1024 && i < 5) { b /= 1024; i++ } printf (i == 1 ? "%d %s" : "%.2f %s"), b, u[i] }'; }

[ "$(id -u)" -eq 0 ] || { echo "cgroup_run: needs root (it creates a cgroup)" >&2; exit 2; }

# The caller's group in a hierarchy: "0::/path" (v2) or "N:...memory...:/path" (v1).
own_group() {
  if [ "$1" = 2 ]; then
    sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | head -n1
  else
    awk -F: '$2 ~ /(^|,)memory(,|$)/ { sub(/^[^:]*:[^:]*:/, ""); print; exit }' /proc/self/cgroup
  fi
}
# Mount points from mountinfo: cgroup2, or cgroup with the memory option.
v2_mount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
  /proc/self/mountinfo | head -n1)
v1_mount=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") {
  if ($(i + 1) == "cgroup" && $(i + 3) ~ /(^|,)memory(,|$)/) print $5; break } }' \
  /proc/self/mountinfo | head -n1)

version=0
group=""
make_group() {  # $1 = parent folder; echoes the group made, or fails
  local g="$1/frugal-$$"
  mkdir "$g" 2>/dev/null || return 1
  echo "$g"
}
if [ -n "$v2_mount" ] && grep -qw memory "$v2_mount/cgroup.controllers" 2>/dev/null; then
  own=$(own_group 2)
  for parent in "$v2_mount${own%/}" "$v2_mount"; do
    grep -qw memory "$parent/cgroup.subtree_control" 2>/dev/null || continue
    if group=$(make_group "$parent"); then version=2; break; fi
  done
fi
if [ $version -eq 0 ] && [ -n "$v1_mount" ]; then
  own=$(own_group 1)
  for parent in "$v1_mount${own%/}" "$v1_mount"; do
    [ -d "$parent" ] || continue
    if group=$(make_group "$parent"); then version=1; break; fi
  done
fi
if [ $version -eq 0 ]; then
  echo "cgroup_run: no memory cgroup controller to use (v2 memory in cgroup.subtree_control, or" \
    "a v1 memory mount)" >&2
  exit 2
fi

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  [ -d "$group" ] || return 0
  # Processes CMD left behind in the group (its descendants): end them, by pid, so it can go.
  local procs=()
  mapfile -t procs <"$group/cgroup.procs" 2>/dev/null || true
  if [ ${#procs[@]} -gt 0 ]; then
    echo "cgroup_run: ending processes left in the group: ${procs[*]}" >&2
    kill -KILL "${procs[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      if [ -z "$(cat "$group/cgroup.procs" 2>/dev/null)" ]; then break; fi
      sleep 0.1
    done
  fi
  rmdir "$group" 2>/dev/null || echo "cgroup_run: could not remove $group" >&2
}
trap cleanup EXIT
# Ctrl-C reaches CMD (the foreground process group); the script waits for it and reports. A
# handled trap (not an ignored signal) is reset to the default in CMD.
trap ':' INT TERM

if [ $version -eq 2 ]; then
  echo "$limit" >"$group/memory.max"
  [ -e "$group/memory.swap.max" ] && echo 0 >"$group/memory.swap.max"
else
  echo "$limit" >"$group/memory.limit_in_bytes"
  if [ -e "$group/memory.memsw.limit_in_bytes" ]; then
    echo "$limit" >"$group/memory.memsw.limit_in_bytes" 2>/dev/null || true
  fi
fi

# CMD runs in the foreground (it keeps the terminal and stdin); only it joins the group.
status=0
(
  echo "$BASHPID" >"$group/cgroup.procs"
  exec "$@"
) || status=$?

if [ $version -eq 2 ]; then
  peak=$(cat "$group/memory.peak" 2>/dev/null || echo "")
  oom_kills=$(awk '$1 == "oom_kill" { print $2 }' "$group/memory.events")
  limit_hits=$(awk '$1 == "max" { print $2 }' "$group/memory.events")
  hits_name="memory.events max"
else
  peak=$(cat "$group/memory.max_usage_in_bytes")
  oom_kills=$(awk '$1 == "oom_kill" { print $2 }' "$group/memory.oom_control")
  limit_hits=$(cat "$group/memory.failcnt")
  hits_name="memory.failcnt"
fi
oom_kills=${oom_kills:-0}
if [ -n "$peak" ]; then
  peak_text="peak $(human "$peak") ($peak B)"
else
  peak_text="peak unknown (memory.peak needs Linux >= 5.19)"
fi
oom_text="no OOM kill"
[ "$oom_kills" -gt 0 ] && oom_text="OOM KILLED ($oom_kills process(es))"
echo "cgroup_run: limit $(human "$limit") ($limit B, cgroup v$version $group): $peak_text," \
  "$hits_name ${limit_hits:-0}, $oom_text; exit status $status" >&2
if [ -n "$report" ]; then
  printf '{"limit_bytes": %s, "peak_bytes": %s, "limit_hits": %s, "oom_kills": %s, "cgroup_version": %s, "exit_status": %s}\n' \
    "$limit" "${peak:-null}" "${limit_hits:-0}" "$oom_kills" "$version" "$status" >"$report"
fi
exit $status

#!/usr/bin/env bash
# Runs a test program as NP processes under Open MPI's mpirun on this machine (loopback, more
# processes than cores allowed, as root where the machine runs tests as root), each process with
# its own temporary folder (ctest's TMPDIR). Skips (exit 0, with the reason) only when mpirun is
# missing or cannot start two processes at all; any other failure fails.
#
#   scripts/mpi_test.sh NP PROGRAM [ARGS...]
set -uo pipefail
np=$1
shift
if ! command -v mpirun >/dev/null; then
  echo "SKIPPED: mpirun not found (scripts/setup.sh installs openmpi-bin)"
  exit 0
fi
mpi=(mpirun --oversubscribe --bind-to none -np "$np")
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
# Can MPI start at all here (e.g. no shared memory or loopback in a container)?
if ! probe=$(timeout 60 "${mpi[@]}" true 2>&1); then
  echo "SKIPPED: mpirun cannot start $np processes on this machine: $probe"
  exit 0
fi
exec timeout 280 "${mpi[@]}" "$@"

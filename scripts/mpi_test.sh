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
source "$(dirname "$0")/mpi_common.sh" "$np"  # sets mpi; skips where mpirun cannot start
exec timeout 280 "${mpi[@]}" -np "$np" "$@"

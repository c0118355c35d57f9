# Sourced by the MPI test scripts (scripts/mpi_*.sh): sets `mpi`, the mpirun command for this
# machine (loopback, more processes than cores allowed, --allow-run-as-root where tests run as
# root), and skips the calling test (exit 0, with the reason) when mpirun is missing or cannot
# start NP processes at all (e.g. a container without shared memory). Any other failure fails.
#
#   source scripts/mpi_common.sh NP
if ! command -v mpirun >/dev/null; then
  echo "SKIPPED: mpirun not found (scripts/setup.sh installs openmpi-bin)"
  exit 0
fi
mpi=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
if ! probe=$(timeout 60 "${mpi[@]}" -np "$1" true 2>&1); then
  echo "SKIPPED: mpirun cannot start $1 processes on this machine: $probe"
  exit 0
fi

# The pid of the process of `rank` among those whose command line matches `pattern` (pgrep -f),
# from the rank Open MPI puts in each one's environment; empty when there is none (yet).
mpi_rank_pid() {
  local pattern=$1 rank=$2 p
  for p in $(pgrep -f -- "$pattern" || true); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$rank"; then
      echo "$p"
      return
    fi
  done
}

#!/usr/bin/env bash
# Installs every Debian package frugal needs to build, test and run. Idempotent: when everything is
# already installed it only runs dpkg-query and returns in well under a second.
#
#   scripts/setup.sh                 build and run (make run)
#   scripts/setup.sh --tests         + what the tests need (make test)
#   scripts/setup.sh --cross-arm64   + the aarch64 cross toolchain, qemu-user and the arm64 libraries
#                                    (scripts/test_arm.sh, on an x86-64 host)
#
# Every package below exists for both amd64 and arm64 Debian 12, so a native aarch64 host runs the
# same list; only --cross-arm64 is meaningless there (it is refused).
set -euo pipefail

tests=0
cross=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --cross-arm64) cross=1 ;;
    *) echo "setup: unknown option '$arg' (expected --tests or --cross-arm64)" >&2; exit 2 ;;
  esac
done

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev           # libFuzzer targets
  # libraries
  nlohmann-json3-dev libcli11-dev libpcre2-dev
  libcpp-httplib-dev                    # frugal serve (linked through pkg-config: cpp-httplib)
  libopenmpi-dev openmpi-bin            # parallel runs under mpirun (docs/PARALLEL.md)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # Python reference tools (run with /usr/bin/python3; tests do not need torch)
  python3 python3-numpy
)

# --tests (make test): what the server's end-to-end tests need besides (tests/serve/js): Chromium
# for the chat page, and Node.js with npm for the official `openai` client; a machine that already
# has a node with npm (e.g. from NodeSource) keeps it, otherwise Debian's packages provide both.
if [ "$tests" = 1 ]; then
  packages+=(chromium curl)  # curl: scripts/mpi_serve_test.sh
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi

# --cross-arm64: the `arm64` preset (cmake/aarch64-linux-gnu.cmake). The compiler and qemu are host
# programs; the target's libraries come from Debian's arm64 multiarch packages (the header-only
# ones, nlohmann-json and CLI11, are architecture-independent and already in the list above);
# libc6:arm64 also provides /lib/ld-linux-aarch64.so.1, the dynamic linker qemu-aarch64 runs the
# tests with (cmake/aarch64-linux-gnu.cmake says why not the cross sysroot's).
# libcpp-httplib-dev:arm64 pulls libssl-dev, libbrotli-dev and zlib1g-dev for arm64, and with them
# the host's copies of those libraries move to the same version (multiarch requires it).
add_arch=0
if [ "$cross" = 1 ]; then
  if [ "$(dpkg --print-architecture)" != amd64 ]; then
    echo "setup: --cross-arm64 is for x86-64 hosts (this one is $(dpkg --print-architecture))" >&2
    exit 2
  fi
  packages+=(g++-aarch64-linux-gnu qemu-user
             libc6:arm64 libstdc++6:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libpcre2-dev:arm64
             libcpp-httplib-dev:arm64 libbenchmark-dev:arm64)
  dpkg --print-foreign-architectures | grep -qx arm64 || add_arch=1
fi

# One dpkg-query for the whole list. A package counts as installed for the architecture asked
# for: the host's (or "all") for a plain NAME, ARCH for NAME:ARCH. (A plain `dpkg-query -W NAME`
# prints one line per installed architecture of a multiarch package.)
host_arch=$(dpkg --print-architecture)
status=$(dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' "${packages[@]}" \
           2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
  name=${p%%:*} want=$host_arch
  case "$p" in *:*) want=${p#*:} ;; esac
  grep -qxF -e "$name:$want installed" -e "$name:all installed" <<<"$status" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ] && [ "$add_arch" = 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$add_arch" = 1 ]; then
  echo "setup: adding the arm64 architecture to dpkg"
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

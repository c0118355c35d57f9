#!/usr/bin/env bash
# Installs every Debian package frugal needs to build, test and run. Idempotent: when everything is
# already installed it only runs dpkg-query and returns in well under a second.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev           # libFuzzer targets
  # libraries
  nlohmann-json3-dev libcli11-dev libpcre2-dev
  libcpp-httplib-dev                    # frugal serve (linked through pkg-config: cpp-httplib)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # Python reference tools (run with /usr/bin/python3; tests do not need torch)
  python3 python3-numpy
)

# --tests (make test): what the server's end-to-end tests need besides (tests/serve/js): Chromium
# for the chat page, and Node.js with npm for the official `openai` client; a machine that already
# has a node with npm (e.g. from NodeSource) keeps it, otherwise Debian's packages provide both.
if [ "${1:-}" = "--tests" ]; then
  packages+=(chromium)
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

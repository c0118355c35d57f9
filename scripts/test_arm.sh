#!/usr/bin/env bash
# test_arm.sh [X86_BUILD_DIR]: the aarch64 part of `make test` (make test-arm), on an x86-64 host.
#
#   1. installs the cross compiler, qemu-user and the arm64 libraries (scripts/setup.sh --cross-arm64)
#   2. configures and builds the `arm64` preset (build/arm64; cmake/aarch64-linux-gnu.cmake)
#   3. runs the unit tests under qemu-aarch64 (ctest's emulator), through scripts/ctest_clean.sh:
#        QEMU_CPU=neoverse-n1   Armv8.2 with NEON, no SVE: the common server core
#        QEMU_CPU=max           every feature qemu emulates, SVE and SVE2 included
#      with the kernels' default level (FRUGAL_ISA unset: the best each CPU model supports), the
#      kernel tests covering every level the CPU model supports
#   4. the perplexity of models/tiny-v4 on held-out text under qemu against the x86 binary in
#      X86_BUILD_DIR (default build/release), both at their default kernel level and both on the
#      scalar oracle (FRUGAL_ISA=scalar, which must give the same figure to the last digit)
#
# On an aarch64 host it only says so: there `make test` builds and runs the whole suite natively.
#
# The selection (below) keeps the ARM part near 10 minutes on two cores: qemu emulates every
# floating-point operation in software, so a test that runs the tiny model over hundreds of tokens
# takes 100-200 times as long as natively. The NEON run takes every test binary but a few cases
# that repeat, at great length, what the other cases already check; the SVE run takes the binaries
# whose code depends on the CPU's features (kernels, quant, core) and the model's golden checks at
# the default cache format, since those are where SVE kernels will be chosen.
set -euo pipefail
cd "$(dirname "$0")/.."
x86_build=${1:-build/release}

if [ "$(uname -m)" = aarch64 ]; then
  echo "test-arm: this is an aarch64 host; the unit tests already ran natively (make unit-test)"
  exit 0
fi

start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start)) s"; }

bash scripts/setup.sh --cross-arm64
cmake --preset arm64 >/dev/null
cmake --build --preset arm64
echo "test-arm: configured and built build/arm64 in $(elapsed)"

# Test cases left out under emulation (ctest -E, a regex on the gtest names). Each is the long
# form of a check that shorter cases in the same run already make:
#   SpeculativeGreedy (engine)          greedy drafts at K = 1..4 over 100+ tokens; Speculative.*
#                                       checks the same acceptance rule on short outputs
#   DecodeEqualsPrefillAtEightOfficialWindows (v4)   the same equality across window and block
#                                       boundaries is DecodeEqualsPrefillAcrossWindowAndBlockBoundaries
#   SamplingKeepsTheMainModelDistribution (engine)   a chi-square over many sampled generations:
#                                       over its 300 s limit under qemu at any kernel level (also
#                                       FRUGAL_ISA=scalar); the other Speculative.* cases check the
#                                       draws and rollback the sampling path uses
neon_exclude='SpeculativeGreedy|DecodeEqualsPrefillAtEightOfficialWindows|SamplingKeepsTheMainModelDistribution'
# The SVE run: the binaries whose code depends on the CPU, and the goldens at the default format.
sve_labels='^(core_tests|quant_tests|kernels_tests)$'

run_suite() {  # QEMU_CPU CTEST-ARGS...
  local cpu=$1 t0 log
  shift
  t0=$(date +%s)
  log=build/arm64/test_arm_${cpu}.log
  echo "test-arm: unit tests under qemu-aarch64, QEMU_CPU=$cpu"
  if ! QEMU_CPU=$cpu bash scripts/ctest_clean.sh arm64 -j2 --output-on-failure "$@" >"$log" 2>&1; then
    grep -E "Failed|\*\*\*|ctest_clean" "$log" >&2 || true
    echo "test-arm: QEMU_CPU=$cpu failed; the whole log is $log" >&2
    exit 1
  fi
  echo "test-arm: QEMU_CPU=$cpu: $(grep -Eo 'out of [0-9]+' "$log" | tail -1 | sed 's/out of //') tests passed in $(($(date +%s) - t0)) s"
}

run_suite neoverse-n1 -E "$neon_exclude"
run_suite max -L "$sve_labels"
QEMU_CPU=max bash scripts/ctest_clean.sh arm64 -j2 -R 'V4Golden.*/fp8' >/dev/null

echo "test-arm: passed in $(elapsed)"

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
#   Server.LongNonStreamingRequestIsAnsweredWhole, Server.FullQueueAnswers429 (serve)   the
#                                       scheduler's long-request and full-queue paths, 150-180 s under
#                                       qemu on a quiet machine and past 300 s on a busy one; the
#                                       scheduler is the same code on every architecture (no kernel of
#                                       its own) and both run natively in the x86 suite
neon_exclude='SpeculativeGreedy|DecodeEqualsPrefillAtEightOfficialWindows|SamplingKeepsTheMainModelDistribution|LongNonStreamingRequestIsAnsweredWhole|FullQueueAnswers429'
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

# 4. The tiny model's perplexity on held-out text (an excerpt of the last 10 % of tinyshakespeare,
# which training never saw), aarch64 under qemu against this host's build. At the default level the
# kernels differ (NEON vs AVX2 / AVX-512) and so does the f32 summation order: the figures must agree
# to 1e-5 relative (measured: the x86 levels differ from each other by ~5e-8). On the scalar oracle
# both builds compute the same operations in the same order (no FMA contraction on either side,
# CMakeLists.txt), so the figures must be equal as printed.
text=tests/data/heldout_excerpt.txt
ppl() {  # COMMAND... -> the perplexity figure
  "$@" perplexity -m models/tiny-v4 -f "$text" --ctx 256 --chunks 2 -t 2 2>/dev/null |
    sed -n 's/^perplexity: \([0-9.]*\) .*/\1/p'
}
x86_bin=$x86_build/src/cli/frugal
arm_bin=build/arm64/src/cli/frugal
x86_default=$(ppl "$x86_bin")
x86_scalar=$(FRUGAL_ISA=scalar ppl "$x86_bin")
arm_default=$(QEMU_CPU=neoverse-n1 ppl qemu-aarch64 "$arm_bin")
arm_scalar=$(QEMU_CPU=neoverse-n1 FRUGAL_ISA=scalar ppl qemu-aarch64 "$arm_bin")
echo "test-arm: tiny-v4 perplexity, default level: x86-64 $x86_default, aarch64 $arm_default;" \
     "scalar: x86-64 $x86_scalar, aarch64 $arm_scalar"
if [ -z "$x86_default" ] || [ -z "$arm_default" ] || [ -z "$x86_scalar" ] || [ -z "$arm_scalar" ]; then
  echo "test-arm: a perplexity run printed no figure" >&2
  exit 1
fi
if ! python3 -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * b)" \
     "$arm_default" "$x86_default"; then
  echo "test-arm: aarch64 perplexity $arm_default differs from x86-64 $x86_default by more than 1e-5" >&2
  exit 1
fi
if [ "$arm_scalar" != "$x86_scalar" ]; then
  echo "test-arm: the scalar oracle gives $arm_scalar on aarch64 and $x86_scalar on x86-64" >&2
  exit 1
fi

echo "test-arm: passed in $(elapsed)"

# Thin driver over CMake presets (CMakePresets.json). `make run` and `make test` work on a fresh
# Debian 12 machine: both install what is missing first (scripts/setup.sh).
PRESET ?= release
BUILD_DIR := build/$(PRESET)
FUZZ_SECONDS ?= 30
STRESS_ROUNDS ?= 10
STRESS_JOBS ?= 4

.PHONY: all setup setup-tests build test unit-test test-arm stress-test fuzz run clean format

all: build

setup:
	@bash scripts/setup.sh

# What only the tests need on top (Chromium, Node.js): not installed by `make run`.
setup-tests:
	@bash scripts/setup.sh --tests

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

# ctest in a temp folder of its own, failing if a test leaves anything behind (scripts/ctest_clean.sh).
unit-test: setup-tests build
	@bash scripts/ctest_clean.sh $(PRESET) -j2 --output-on-failure

# Not part of `make test`: the unit suite STRESS_ROUNDS times in a row, STRESS_JOBS processes at a
# time in random order, stopping at the first failure, so a race between tests shows up here on
# purpose rather than in CI.
stress-test: setup-tests build
	@bash scripts/stress_test.sh $(PRESET) $(STRESS_ROUNDS) $(STRESS_JOBS)

# libFuzzer targets built with clang under ASan/UBSan, each run for FUZZ_SECONDS.
fuzz: setup
	@cmake --preset fuzz -DFRUGAL_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build --preset fuzz --target fuzzers
	@bash scripts/ctest_clean.sh fuzz

# On an x86-64 host: the aarch64 cross build and its tests under qemu-user (scripts/test_arm.sh: NEON
# and SVE CPU models, and the tiny model's perplexity against this build's). On an aarch64 host the
# unit tests above already ran natively and this only says so.
test-arm: build
	@bash scripts/test_arm.sh $(BUILD_DIR)

test: unit-test fuzz test-arm

run: build
	@bash scripts/run.sh $(BUILD_DIR)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build

# Thin driver over CMake presets (CMakePresets.json). `make run` and `make test` work on a fresh
# Debian 12 machine: both install what is missing first (scripts/setup.sh).
PRESET ?= release
BUILD_DIR := build/$(PRESET)
FUZZ_SECONDS ?= 30

.PHONY: all setup build test unit-test fuzz run clean format

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

unit-test: build
	@ctest --preset $(PRESET) -j2

# libFuzzer targets built with clang under ASan/UBSan, each run for FUZZ_SECONDS.
fuzz: setup
	@cmake --preset fuzz -DFRUGAL_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build --preset fuzz --target fuzzers
	@ctest --preset fuzz

test: unit-test fuzz

run: build
	@bash scripts/run.sh $(BUILD_DIR)

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build

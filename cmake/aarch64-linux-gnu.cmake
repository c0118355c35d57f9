# Cross-compiling frugal for 64-bit ARM Linux from an x86-64 Debian host (Debian's
# g++-aarch64-linux-gnu; libraries from the arm64 multiarch packages under /usr/lib/aarch64-linux-gnu).
# The binaries run on an aarch64 machine or, for the tests, under qemu-user (scripts/test_arm.sh).
# Used by the `arm64` preset only: a native aarch64 host builds with the `release` preset and its
# own compiler.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Headers and libraries of the target come from the multiarch paths and the cross sysroot;
# programs (cmake's helpers, python) from the host.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config (cpp-httplib) reads the arm64 .pc files only: with the host's search path it would
# hand the x86-64 library directory to the linker. /usr/share/pkgconfig holds the
# architecture-independent ones.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Test executables registered with ctest run through qemu-user. The CPU model comes from QEMU_CPU
# in the environment (scripts/test_arm.sh runs the suite once NEON-only and once with SVE).
# No `-L /usr/aarch64-linux-gnu`: with it qemu loads the dynamic linker of the cross sysroot
# (libc6-arm64-cross) while that linker, through the host's /etc/ld.so.cache, loads libc.so.6 of
# the arm64 multiarch package (libc6:arm64, another build); the mismatched pair hangs in the first
# pthread_create. Without -L, /lib/ld-linux-aarch64.so.1 and every library come from the arm64
# multiarch packages, as on an aarch64 Debian machine.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)

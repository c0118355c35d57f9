// ISA naming, detection and selection (FRUGAL_ISA).
#include "kernels/isa.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "kernels/kernels.h"

namespace frugal::kernels {
namespace {

TEST(Isa, NamesRoundTrip) {
  for (Isa isa : kAllIsas) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("sse9").has_value());
}

TEST(Isa, LevelsAreCumulative) {
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  EXPECT_TRUE(!isa_supported(Isa::kAmx) || isa_supported(Isa::kAvx512));
  EXPECT_TRUE(!isa_supported(Isa::kAvx512) || isa_supported(Isa::kAvx2));
  const auto all = supported_isas();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), Isa::kScalar);
  EXPECT_EQ(all.back(), best_isa());
  // Every supported level includes every supported level below it on its own architecture.
  for (Isa isa : all) {
    for (Isa level : all) {
      if (level <= isa) {
        EXPECT_TRUE(isa_includes(isa, level)) << isa_name(isa) << " " << isa_name(level);
      }
    }
  }
}

TEST(Isa, IncludesStaysWithinAnArchitecture) {
  for (Isa isa : kAllIsas) {
    EXPECT_TRUE(isa_includes(isa, Isa::kScalar));
    EXPECT_TRUE(isa_includes(isa, isa));
  }
  EXPECT_TRUE(isa_includes(Isa::kAmx, Isa::kAvx2));
  EXPECT_TRUE(isa_includes(Isa::kAvx512, Isa::kAvx2));
  EXPECT_FALSE(isa_includes(Isa::kAvx2, Isa::kAvx512));
  EXPECT_FALSE(isa_includes(Isa::kScalar, Isa::kAvx2));
  for (Isa x86 : {Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    EXPECT_FALSE(isa_includes(Isa::kNeon, x86)) << isa_name(x86);
    EXPECT_FALSE(isa_includes(x86, Isa::kNeon)) << isa_name(x86);
  }
}

// Each architecture supports only its own levels; aarch64 Linux always has ASIMD (Armv8-A), so
// the NEON kernels are tested wherever this test runs on ARM (qemu-user included).
TEST(Isa, LevelsOfThisArchitecture) {
#if defined(__x86_64__)
  EXPECT_FALSE(isa_supported(Isa::kNeon));
#elif defined(__aarch64__)
  EXPECT_TRUE(isa_supported(Isa::kNeon));
  EXPECT_EQ(best_isa(), Isa::kNeon);
  for (Isa x86 : {Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    EXPECT_FALSE(isa_supported(x86)) << isa_name(x86);
  }
#else
  EXPECT_EQ(best_isa(), Isa::kScalar);
#endif
}

// Restores FRUGAL_ISA after a test changes it.
class EnvGuard {
 public:
  EnvGuard() {
    const char* v = getenv("FRUGAL_ISA");
    had_ = v != nullptr;
    if (had_) old_ = v;
  }
  ~EnvGuard() { had_ ? setenv("FRUGAL_ISA", old_.c_str(), 1) : unsetenv("FRUGAL_ISA"); }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(Isa, EnvironmentOverride) {
  EnvGuard guard;
  unsetenv("FRUGAL_ISA");
  EXPECT_EQ(isa_from_env().value(), best_isa());
  setenv("FRUGAL_ISA", "scalar", 1);
  EXPECT_EQ(isa_from_env().value(), Isa::kScalar);
  auto k = Kernels::create();
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->isa(), Isa::kScalar);
  if (isa_supported(Isa::kNeon)) {
    setenv("FRUGAL_ISA", "neon", 1);
    EXPECT_EQ(isa_from_env().value(), Isa::kNeon);
    auto n = Kernels::create();
    ASSERT_TRUE(n.ok()) << n.status().to_string();
    EXPECT_EQ(n->isa(), Isa::kNeon);
  }
  setenv("FRUGAL_ISA", "avx1024", 1);
  auto bad = isa_from_env();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("FRUGAL_ISA"), std::string::npos);
  EXPECT_FALSE(Kernels::create().ok());
  for (Isa isa : kAllIsas) {
    if (isa_supported(isa)) continue;
    setenv("FRUGAL_ISA", std::string(isa_name(isa)).c_str(), 1);
    auto r = isa_from_env();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
    EXPECT_FALSE(Kernels::create({.isa = isa}).ok());
  }
}

TEST(Isa, ExplicitLevelWins) {
  EnvGuard guard;
  setenv("FRUGAL_ISA", "scalar", 1);
  auto k = Kernels::create({.isa = best_isa()});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->isa(), best_isa());
}

}  // namespace
}  // namespace frugal::kernels

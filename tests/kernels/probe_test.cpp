// The machine probes of the op API (Kernels::read_stream, Kernels::fma_peak) on every ISA this
// CPU has: the read probe must touch every word of all four streams (an OR that misses a word or
// a quarter of the range would make the bandwidth figure too high), and the FMA probe must
// report the flops it did (2 per lane and FMA, 12 chains).
#include <gtest/gtest.h>

#include <string>

#include "core/memory.h"
#include "kernels/kernels.h"

namespace frugal::kernels {
namespace {

int lanes(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return 1;
    case Isa::kNeon:
      return 4;
    case Isa::kAvx2:
      return 8;
    case Isa::kAvx512:
    case Isa::kAmx:
      return 16;
  }
  return 0;
}

TEST(Probes, ReadStreamSeesEveryWord) {
  constexpr int64_t kWords = 4096;  // 32 KiB: four quarters of 1024 words
  Result<AlignedBuffer> buf = AlignedBuffer::allocate(kWords * 8, nullptr);
  ASSERT_TRUE(buf.ok());
  uint64_t* p = buf->as<uint64_t>();
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    Result<Kernels> k = Kernels::create({.isa = isa});
    ASSERT_TRUE(k.ok());
    // One bit per word, at the first, last and a middle word of each quarter: 12 distinct bits.
    for (int64_t q = 0; q < 4; ++q) {
      for (int64_t pick = 0; pick < 3; ++pick) {
        const int64_t at = q * 1024 + (pick == 0 ? 0 : pick == 1 ? 517 : 1023);
        std::fill(p, p + kWords, uint64_t{0});
        p[at] = uint64_t{1} << (q * 3 + pick);
        EXPECT_EQ(k->read_stream(p, kWords), uint64_t{1} << (q * 3 + pick)) << "word " << at;
      }
    }
    std::fill(p, p + kWords, uint64_t{0});
    EXPECT_EQ(k->read_stream(p, kWords), 0u);
  }
}

TEST(Probes, FmaPeakCountsItsFlops) {
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(std::string(isa_name(isa)));
    Result<Kernels> k = Kernels::create({.isa = isa});
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(k->fma_peak(1000), uint64_t{1000} * 12 * 2 * lanes(isa));
    EXPECT_EQ(k->fma_peak(0), 0u);
  }
}

}  // namespace
}  // namespace frugal::kernels

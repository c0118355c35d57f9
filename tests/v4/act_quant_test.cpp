// ModelOptions::act_quant, the deployed numerics (architecture doc §2.A, "Linear layers"): the
// shipped model's short-prompt prefill against the reference run with act_quant on the same
// linears (tools/reference/make_goldens.py: act_quant.short.prefill_logits), on every ISA level.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "v4_random.h"

namespace frugal::v4 {
namespace {

using namespace frugal::v4::testing;

struct Golden {
  std::vector<int32_t> ids;  // the short prompt
  std::vector<float> logits;  // [n, vocab] with act_quant
};

Golden load_golden() {
  const std::string dir = std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/tiny-v4";
  std::ifstream in(dir + "/manifest.json");
  const nlohmann::json m = nlohmann::json::parse(in);
  auto file = [&](const std::string& name) {
    return dir + "/" + m["arrays"].at(name)["file"].get<std::string>();
  };
  Golden g;
  g.logits = read_f32(file("act_quant.short.prefill_logits"));
  // The held-out ids 1000..1019: make_goldens.py's short sequence.
  const std::vector<int32_t> held = read_array<int32_t>(file("heldout.ids"));
  g.ids.assign(held.begin() + 1000, held.begin() + 1020);
  return g;
}

std::vector<float> prefill(kernels::Isa isa, bool act_quant, const std::vector<int32_t>& ids) {
  const std::string dir = std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4";
  auto m = Model::load(dir, test_kernels(isa), {},
                       {.max_chunk = 64, .max_seq_len = 256, .act_quant = act_quant});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  if (!m.ok()) return {};
  const int64_t n = static_cast<int64_t>(ids.size()), v = (*m)->config().vocab_size;
  std::vector<float> logits(n * v);
  auto cache = new_cache(**m, kv::CacheFormat::kF32);  // the reference's cache values exactly
  const Status s = (*m)->forward(*cache, {.ids = ids, .logits_mode = LogitsMode::kAll, .logits = logits});
  EXPECT_TRUE(s.ok()) << s.to_string();
  return logits;
}

// The rounded activations are e4m3 times a power of two, so every product is exact in f32 on both
// sides and the logits differ only by summation order (measured ~1e-6 of the scale, as the f32
// goldens). Allowed 1e-4: an activation within summation noise of an e4m3 rounding midpoint could
// round the other way (one e4m3 step, 2^-4 relative, of one input of one linear), which moves a
// logits row by far less than that; none is seen here.
TEST(ActQuant, MatchesTheReferenceOnEveryIsa) {
  const Golden g = load_golden();
  ASSERT_EQ(g.ids.size(), 20u);
  for (const kernels::Isa isa : kernels::supported_isas()) {
    const std::vector<float> got = prefill(isa, true, g.ids);
    ASSERT_EQ(got.size(), g.logits.size()) << kernels::isa_name(isa);
    const double d = rel_diff(g.logits, got);
    std::printf("act_quant %s: %.2e of the scale\n", std::string(kernels::isa_name(isa)).c_str(), d);
    EXPECT_LE(d, 1e-4) << kernels::isa_name(isa);
  }
}

// The option changes the numbers: without it the engine is ~7e-3 of the scale away from the
// act_quant reference (the FP8 rounding of every FP8/FP4 linear's input), 70x the tolerance above,
// so the test above could not pass with the option ignored.
TEST(ActQuant, TheOptionChangesTheLogits) {
  const Golden g = load_golden();
  const std::vector<float> plain = prefill(kernels::best_isa(), false, g.ids);
  ASSERT_EQ(plain.size(), g.logits.size());
  EXPECT_GT(rel_diff(g.logits, plain), 3e-3);
}

// act_quant rounds whole 128-element blocks: a model whose linear inputs are not multiples of 128
// (the synthetic test config: q_lora_rank 64) is refused with the field named.
TEST(ActQuant, RefusesInputsThatAreNotWholeBlocks) {
  auto m = Model::load(random_checkpoint(), test_kernels(), {},
                       {.max_chunk = 16, .max_seq_len = 64, .act_quant = true});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("q_lora_rank = 64"), std::string::npos)
      << m.status().to_string();
}

}  // namespace
}  // namespace frugal::v4

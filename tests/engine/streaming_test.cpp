// The memory budget through the engine (engine/streaming.h) on the shipped tiny model: a budget
// streams the routed experts (an expert cache of the slots the plan fits) and reads the embedding
// by rows, generation gives the tokens of the resident model (greedy and seeded, speculative
// decoding on), a budget below the minimum fails before the load naming the minimum, and no
// budget on a model that fits keeps every expert resident.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/budget.h"
#include "engine/generator.h"
#include "test_model.h"

namespace frugal::engine {
namespace {

Result<std::unique_ptr<Engine>> tiny(std::optional<uint64_t> budget, bool prefetch = true) {
  EngineOptions eo;
  eo.model_dir = test_model_dir();
  eo.threads = 1;
  eo.max_seq_len = 256;
  eo.progress = false;
  eo.mem_budget = budget;
  eo.prefetch_experts = prefetch;
  return Engine::load(eo);
}

std::vector<int32_t> generate(Engine& e, const std::string& text, float temperature,
                              SpecMode spec) {
  std::vector<int32_t> prompt = {0};
  EXPECT_TRUE(e.tokenizer().encode_append(text, {}, &prompt).ok());
  GenerateOptions o{.max_tokens = 24, .stop_at_eos = false};
  o.sampling.temperature = temperature;
  o.sampling.seed = 5;
  o.spec.mode = spec;
  auto g = Generator::create(e, o);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return {};
  auto st = (*g)->generate(prompt, [](std::string_view) { return ok_status(); });
  EXPECT_TRUE(st.ok()) << st.status().to_string();
  return st.ok() ? st->ids : std::vector<int32_t>{};
}

// The smallest budget the plan accepts for tiny-v4 at these options, plus `extra` bytes.
uint64_t min_budget_plus(uint64_t extra) {
  auto e = tiny(std::nullopt);
  EXPECT_TRUE(e.ok());
  Result<std::unique_ptr<Engine>> too_small = tiny(uint64_t{1} << 20);
  EXPECT_FALSE(too_small.ok());
  // "... give at least N bytes": the error names the minimum.
  const std::string m = too_small.status().message();
  const size_t at = m.rfind("at least ");
  EXPECT_NE(at, std::string::npos) << m;
  return std::stoull(m.substr(at + 9)) + extra;
}

TEST(Streaming, BudgetGivesTheResidentTokens) {
  auto resident = tiny(std::nullopt);
  ASSERT_TRUE(resident.ok()) << resident.status().to_string();
  EXPECT_EQ((*resident)->expert_cache(), nullptr);               // it fits: nothing streams
  const uint64_t budget = min_budget_plus(uint64_t{200} << 10);  // a few slots past the minimum
  auto streamed = tiny(budget);
  ASSERT_TRUE(streamed.ok()) << streamed.status().to_string();
  ASSERT_NE((*streamed)->expert_cache(), nullptr);
  const int64_t slots = (*streamed)->expert_cache()->slots();
  EXPECT_LT(slots, (*streamed)->config().n_blocks() * (*streamed)->config().n_routed_experts);
  EXPECT_NE((*streamed)->budget_summary().find("expert slots"), std::string::npos);
  for (SpecMode spec : {SpecMode::kOff, SpecMode::kOn}) {
    for (float temp : {0.0f, 0.9f}) {
      EXPECT_EQ(generate(**streamed, "ROMEO:\nWhat light", temp, spec),
                generate(**resident, "ROMEO:\nWhat light", temp, spec))
          << "temperature " << temp << " spec " << static_cast<int>(spec);
    }
  }
  EXPECT_GT((*streamed)->expert_cache()->stats().evictions, 0u);
  // The embedding is read by rows under the budget (the tokens above are those of the resident
  // table), and stays resident without one.
  EXPECT_EQ((*resident)->embed_rows(), nullptr);
  ASSERT_NE((*streamed)->embed_rows(), nullptr);
  EXPECT_GT((*streamed)->embed_rows()->rows_read(), 0u);
  EXPECT_NE((*streamed)->budget_summary().find("embedding"), std::string::npos);
}

TEST(Streaming, BudgetBelowTheMinimumNamesIt) {
  Result<std::unique_ptr<Engine>> e = tiny(uint64_t{1} << 20);
  ASSERT_FALSE(e.ok());
  const std::string m = e.status().message();
  EXPECT_NE(m.find("--mem-budget"), std::string::npos) << m;
  EXPECT_NE(m.find("minimum"), std::string::npos) << m;
}

}  // namespace
}  // namespace frugal::engine

// The generation loop on the shipped tiny model: greedy runs are reproducible, seeded sampling
// is reproducible, the token limit and stop strings end generation, and prefix reuse (a prompt
// that extends what is in the cache) gives the same tokens as a fresh prefill.
#include "engine/generator.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "test_model.h"

namespace frugal::engine {
namespace {

std::unique_ptr<Engine> tiny() {
  EngineOptions eo;
  eo.model_dir = test_model_dir();
  eo.threads = 1;
  eo.max_seq_len = 256;
  eo.progress = false;
  Result<std::unique_ptr<Engine>> e = Engine::load(eo);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

struct Out {
  std::string text;
  GenerationStats stats;
};

Out gen(Generator& g, const std::vector<int32_t>& prompt) {
  Out o;
  Result<GenerationStats> st = g.generate(prompt, [&](std::string_view t) {
    o.text += t;
    return ok_status();
  });
  EXPECT_TRUE(st.ok()) << st.status().to_string();
  if (st.ok()) o.stats = *st;
  return o;
}

std::vector<int32_t> prompt_ids(const Engine& e, const std::string& text) {
  std::vector<int32_t> ids = {0};  // BOS
  EXPECT_TRUE(e.tokenizer().encode_append(text, {}, &ids).ok());
  return ids;
}

TEST(Generator, GreedyAndSeededRunsRepeat) {
  std::unique_ptr<Engine> e = tiny();
  ASSERT_NE(e, nullptr);
  const std::vector<int32_t> p = prompt_ids(*e, "ROMEO:\nWhat light");
  GenerateOptions o{.max_tokens = 12, .stop_at_eos = false};
  o.sampling.temperature = 0;
  auto g = Generator::create(*e, o);
  ASSERT_TRUE(g.ok());
  const Out a = gen(**g, p);
  (*g)->reset();
  const Out b = gen(**g, p);
  EXPECT_EQ(a.stats.ids, b.stats.ids);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.stats.generated_tokens, 12);
  EXPECT_EQ(a.stats.decode_steps, 11);
  EXPECT_EQ(a.stats.stop, StopReason::kMaxTokens);
  EXPECT_FALSE(a.text.empty());

  o.sampling = {.temperature = 1.0f, .seed = 7};
  auto s1 = Generator::create(*e, o);
  auto s2 = Generator::create(*e, o);
  o.sampling.seed = 8;
  auto s3 = Generator::create(*e, o);
  ASSERT_TRUE(s1.ok() && s2.ok() && s3.ok());
  const Out x = gen(**s1, p), y = gen(**s2, p), z = gen(**s3, p);
  EXPECT_EQ(x.stats.ids, y.stats.ids);
  EXPECT_NE(x.stats.ids, z.stats.ids);  // 12 draws at temperature 1 from different seeds
}

TEST(Generator, PrefixReuseMatchesFreshPrefill) {
  std::unique_ptr<Engine> e = tiny();
  ASSERT_NE(e, nullptr);
  GenerateOptions o{.max_tokens = 6, .stop_at_eos = false};
  o.sampling.temperature = 0;
  auto g = Generator::create(*e, o);
  auto fresh = Generator::create(*e, o);
  ASSERT_TRUE(g.ok() && fresh.ok());
  std::vector<int32_t> p = prompt_ids(*e, "First Citizen:\nBefore we proceed");
  const Out first = gen(**g, p);
  // Next "turn": the prompt, the reply, more text.
  std::vector<int32_t> p2 = p;
  p2.insert(p2.end(), first.stats.ids.begin(), first.stats.ids.end());
  EXPECT_TRUE(e->tokenizer().encode_append("\n\nSecond Citizen:\n", {}, &p2).ok());
  const Out reused = gen(**g, p2);
  // The cache held the prompt and the fed reply tokens (all but the last sampled one).
  EXPECT_EQ(reused.stats.reused_tokens,
            static_cast<int64_t>(p.size() + first.stats.ids.size() - 1));
  const Out scratch = gen(**fresh, p2);
  EXPECT_EQ(scratch.stats.reused_tokens, 0);
  EXPECT_EQ(reused.stats.ids, scratch.stats.ids);
  // A prompt that does not extend the cache starts over.
  const Out again = gen(**g, p);
  EXPECT_EQ(again.stats.reused_tokens, 0);
  EXPECT_EQ(again.stats.ids, first.stats.ids);
}

TEST(Generator, StopStringEndsAndIsNotEmitted) {
  std::unique_ptr<Engine> e = tiny();
  ASSERT_NE(e, nullptr);
  GenerateOptions o{.max_tokens = 40, .stop_at_eos = false};
  o.sampling.temperature = 0;
  auto g = Generator::create(*e, o);
  ASSERT_TRUE(g.ok());
  const std::vector<int32_t> p = prompt_ids(*e, "KING RICHARD:\n");
  const Out full = gen(**g, p);
  ASSERT_GE(full.text.size(), 4u);
  // Stop at the first occurrence of a piece of the greedy text itself.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  o.stop_strings = {stop};
  auto gs = Generator::create(*e, o);
  ASSERT_TRUE(gs.ok());
  const Out cut = gen(**gs, p);
  EXPECT_EQ(cut.stats.stop, StopReason::kStopString);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
}

TEST(Generator, PromptLongerThanContextIsAnError) {
  std::unique_ptr<Engine> e = tiny();
  ASSERT_NE(e, nullptr);
  auto g = Generator::create(*e, {});
  ASSERT_TRUE(g.ok());
  std::vector<int32_t> p(300, 5);
  Result<GenerationStats> st = (*g)->generate(p, [](std::string_view) { return ok_status(); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("raise --ctx"), std::string::npos);
}

}  // namespace
}  // namespace frugal::engine

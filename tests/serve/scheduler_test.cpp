// The scheduler on the shipped tiny model: sequences batched together produce what each produces
// alone (bit for bit with the scalar kernels, whatever joins or leaves the batch), prefix reuse
// gives the cold run's logits exactly, and cancellation, the queue bound, the kv budget, drain and
// the argument checks behave as documented.
#include "serve/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "engine/generator.h"
#include "engine/test_model.h"

namespace frugal::serve {
namespace {

using engine::Engine;

std::unique_ptr<Engine> load(int64_t max_batch, std::optional<kernels::Isa> isa) {
  engine::EngineOptions eo;
  eo.model_dir = engine::test_model_dir();
  eo.threads = 2;
  eo.max_seq_len = 1024;
  eo.max_chunk = 64;
  eo.max_batch = max_batch;
  eo.progress = false;
  eo.isa = isa;
  Result<std::unique_ptr<Engine>> e = Engine::load(eo);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<int32_t> ids(const Engine& e, const std::string& text) {
  std::vector<int32_t> out = {0};  // BOS
  EXPECT_TRUE(e.tokenizer().encode_append(text, {}, &out).ok());
  return out;
}

// Everything a sequence produced, once it finished.
struct Collected {
  std::string text;
  std::vector<TokenInfo> tokens;
  SequenceUpdate last;
  std::vector<float> first_logits;
};

Collected collect(SequenceHandle& h) {
  Collected c;
  uint64_t seen = 0;
  while (true) {
    SequenceUpdate u;
    if (h.take(&u)) {
      c.text += u.text;
      for (TokenInfo& t : u.tokens) c.tokens.push_back(std::move(t));
      if (!u.first_logits.empty()) c.first_logits = std::move(u.first_logits);
      c.last = std::move(u);
      if (c.last.finished) return c;
      continue;
    }
    h.notifier().wait(&seen, std::chrono::milliseconds(200));
  }
}

std::vector<int32_t> token_ids(const Collected& c) {
  std::vector<int32_t> out;
  for (const TokenInfo& t : c.tokens) out.push_back(t.id);
  return out;
}

SequenceParams greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
  SequenceParams p;
  p.prompt = std::move(prompt);
  p.max_tokens = max_tokens;
  p.sampling.temperature = 0;
  p.stop_at_eos = false;
  return p;
}

TEST(Scheduler, BatchedSequencesEqualEachAloneWithScalarKernels) {
  std::unique_ptr<Engine> e = load(4, kernels::Isa::kScalar);
  ASSERT_NE(e, nullptr);
  const std::vector<std::vector<int32_t>> prompts = {
      ids(*e, "ROMEO:\nWhat light"),
      ids(*e,
          "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, "
          "speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?"),
      ids(*e, "KING"),
  };
  const int64_t lengths[] = {40, 23, 31};  // different ends: sequences leave at different steps
  // Alone: the one-sequence Generator with the same kernels.
  std::vector<std::vector<int32_t>> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine::GenerateOptions go{.max_tokens = lengths[i], .stop_at_eos = false};
    go.sampling.temperature = 0;
    auto g = engine::Generator::create(*e, go);
    ASSERT_TRUE(g.ok());
    auto st = (*g)->generate(prompts[i], [](std::string_view) { return ok_status(); });
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    alone.push_back(st->ids);
  }
  // Together, with a prefill chunk smaller than the prompts so prefill and decode mix.
  auto s = Scheduler::create(*e, {.max_parallel = 4, .prefill_chunk = 16});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto notifier = std::make_shared<Notifier>();
  std::vector<std::shared_ptr<SequenceHandle>> hs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto h = (*s)->submit(greedy(prompts[i], lengths[i]), notifier);
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    hs.push_back(*h);
  }
  for (size_t i = 0; i < hs.size(); ++i) {
    const Collected c = collect(*hs[i]);
    EXPECT_EQ(c.last.reason, FinishReason::kLength);
    EXPECT_EQ(c.last.completion_tokens, lengths[i]);
    EXPECT_EQ(c.last.prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    EXPECT_EQ(token_ids(c), alone[i]) << "sequence " << i;
  }
  (*s)->drain();  // the last sequence is released in the step after its last token
  const SchedulerStats st = (*s)->stats();
  EXPECT_EQ(st.finished, 3u);
  EXPECT_GT(st.step_sequences, st.steps);  // some steps held several sequences
  EXPECT_EQ(st.active, 0);
}

TEST(Scheduler, PrefixReuseGivesTheColdLogitsExactly) {
  std::unique_ptr<Engine> e = load(2, std::nullopt);  // the machine's best kernels
  ASSERT_NE(e, nullptr);
  std::string system;
  for (int i = 0; i < 12; ++i) system += "MENENIUS:\nI tell you, friends, most charitable care.\n";
  const std::vector<int32_t> prefix = ids(*e, system);
  ASSERT_GT(prefix.size(), 150u);  // several chunks
  auto with = [&](const std::string& tail) {
    std::vector<int32_t> p = prefix;
    EXPECT_TRUE(e->tokenizer().encode_append(tail, {}, &p).ok());
    SequenceParams sp = greedy(p, 4);
    sp.snapshot_points = {static_cast<int64_t>(prefix.size()), static_cast<int64_t>(p.size()) - 1};
    sp.capture_logits = true;
    return sp;
  };
  const SequenceParams a = with("ROMEO:\nWhat light"), b = with("JULIET:\nAy me!");
  auto run = [&](Scheduler& s, const SequenceParams& p) {
    auto h = s.submit(p, nullptr);
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    return collect(**h);
  };
  auto cold = Scheduler::create(*e, {.max_parallel = 2});
  ASSERT_TRUE(cold.ok());
  const Collected b_cold = run(**cold, b);
  ASSERT_EQ(b_cold.last.reason, FinishReason::kLength) << b_cold.last.error.to_string();
  EXPECT_EQ(b_cold.last.cached_tokens, 0);
  (*cold).reset();  // one scheduler per engine at a time

  auto warm = Scheduler::create(*e, {.max_parallel = 2, .prefix_cache_bytes = 64u << 20});
  ASSERT_TRUE(warm.ok());
  const Collected a_run = run(**warm, a);
  EXPECT_EQ(a_run.last.cached_tokens, 0);
  const Collected b_warm = run(**warm, b);
  EXPECT_EQ(b_warm.last.cached_tokens, static_cast<int64_t>(prefix.size()));
  ASSERT_EQ(b_warm.first_logits.size(), b_cold.first_logits.size());
  EXPECT_TRUE(b_warm.first_logits == b_cold.first_logits) << "logits differ after a restore";
  EXPECT_EQ(token_ids(b_warm), token_ids(b_cold));
  // The same prompt again reuses all of it but its last token.
  const Collected b_again = run(**warm, b);
  EXPECT_EQ(b_again.last.cached_tokens, static_cast<int64_t>(b.prompt.size()) - 1);
  EXPECT_TRUE(b_again.first_logits == b_cold.first_logits);
  const SchedulerStats st = (*warm)->stats();
  EXPECT_EQ(st.prefix.hits, 2u);
  EXPECT_GE(st.prefix.entries, 3u);  // a's two points, b's last-token point
}

TEST(Scheduler, SamePromptTwiceAtOncePrefillsItOnce) {
  // Scalar kernels: the two last-token passes may share a step, and only the scalar kernels give
  // a row the same bits whatever else is in the step.
  std::unique_ptr<Engine> e = load(2, kernels::Isa::kScalar);
  ASSERT_NE(e, nullptr);
  std::string text;
  for (int i = 0; i < 8; ++i) text += "CORIOLANUS:\nThey have a leader, Marcius.\n";
  SequenceParams p = greedy(ids(*e, text), 6);
  p.snapshot_points = {static_cast<int64_t>(p.prompt.size()) - 1};
  p.capture_logits = true;
  auto s = Scheduler::create(*e, {.max_parallel = 2, .prefix_cache_bytes = 16u << 20});
  ASSERT_TRUE(s.ok());
  auto notifier = std::make_shared<Notifier>();
  auto h1 = (*s)->submit(p, notifier);  // the two choices of one request
  auto h2 = (*s)->submit(p, notifier);
  ASSERT_TRUE(h1.ok() && h2.ok());
  const Collected c1 = collect(**h1), c2 = collect(**h2);
  EXPECT_EQ(c1.last.cached_tokens, 0);
  EXPECT_EQ(c2.last.cached_tokens, static_cast<int64_t>(p.prompt.size()) - 1);
  EXPECT_TRUE(c1.first_logits == c2.first_logits);
  EXPECT_EQ(token_ids(c1), token_ids(c2));
}

TEST(Scheduler, CancelFreesTheSequenceWithinAStep) {
  std::unique_ptr<Engine> e = load(2, std::nullopt);
  ASSERT_NE(e, nullptr);
  auto s = Scheduler::create(*e, {.max_parallel = 2});
  ASSERT_TRUE(s.ok());
  auto h = (*s)->submit(greedy(ids(*e, "ROMEO:"), 900), nullptr);
  ASSERT_TRUE(h.ok());
  uint64_t seen = 0;
  SequenceUpdate u;
  while (!(*h)->take(&u) || u.tokens.empty())
    (*h)->notifier().wait(&seen, std::chrono::milliseconds(100));
  (*h)->cancel();
  const Collected c = collect(**h);
  EXPECT_EQ(c.last.reason, FinishReason::kCancelled);
  EXPECT_LT(c.last.completion_tokens, 900);
  (*s)->drain();
  const SchedulerStats st = (*s)->stats();
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.kv_bytes, 0u);
  EXPECT_EQ(st.kv_reserved_bytes, 0u);
}

TEST(Scheduler, QueueBoundAndDrain) {
  std::unique_ptr<Engine> e = load(1, std::nullopt);
  ASSERT_NE(e, nullptr);
  auto s = Scheduler::create(*e, {.max_parallel = 1, .max_queue = 1});
  ASSERT_TRUE(s.ok());
  std::vector<std::shared_ptr<SequenceHandle>> hs;
  int rejected = 0;
  for (int i = 0; i < 6; ++i) {
    auto h = (*s)->submit(greedy(ids(*e, "KING"), 200), nullptr);
    if (h.ok()) {
      hs.push_back(*h);
    } else {
      EXPECT_EQ(h.status().code(), StatusCode::kResourceExhausted) << h.status().to_string();
      EXPECT_NE(h.status().message().find("queue is full"), std::string::npos);
      ++rejected;
    }
  }
  EXPECT_GE(rejected, 4);  // one running, one waiting (the first may not have started yet)
  (*s)->drain();
  for (auto& h : hs) EXPECT_EQ(collect(*h).last.reason, FinishReason::kLength);
  auto late = (*s)->submit(greedy(ids(*e, "KING"), 2), nullptr);
  EXPECT_EQ(late.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ((*s)->stats().rejected, static_cast<uint64_t>(rejected));
}

TEST(Scheduler, LogprobsStopStringsAndLimits) {
  std::unique_ptr<Engine> e = load(2, std::nullopt);
  ASSERT_NE(e, nullptr);
  auto s = Scheduler::create(*e, {.max_parallel = 2});
  ASSERT_TRUE(s.ok());
  SequenceParams p = greedy(ids(*e, "ROMEO:\n"), 30);
  p.top_logprobs = 3;
  auto h = (*s)->submit(p, nullptr);
  ASSERT_TRUE(h.ok());
  const Collected c = collect(**h);
  ASSERT_EQ(c.tokens.size(), 30u);
  for (const TokenInfo& t : c.tokens) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].first, t.id);  // greedy: the best token
    EXPECT_FLOAT_EQ(t.top[0].second, t.logprob);
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].second, t.top[1].second);
  }
  // A stop string from that text ends the next run just before it.
  ASSERT_GT(c.text.size(), 12u);
  const std::string stop = c.text.substr(8, 3);
  SequenceParams q = greedy(p.prompt, 30);
  q.stop_strings = {stop};
  auto h2 = (*s)->submit(q, nullptr);
  ASSERT_TRUE(h2.ok());
  const Collected c2 = collect(**h2);
  EXPECT_EQ(c2.last.reason, FinishReason::kStop);
  EXPECT_EQ(c2.text, c.text.substr(0, c.text.find(stop)));
}

TEST(Scheduler, ArgumentChecksAndKvBudget) {
  std::unique_ptr<Engine> e = load(2, std::nullopt);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(Scheduler::create(*e, {.max_parallel = 3}).status().code(),
            StatusCode::kInvalidArgument);  // over the engine's max_batch
  auto s = Scheduler::create(*e, {.max_parallel = 2, .kv_budget = 64 << 10});
  ASSERT_TRUE(s.ok());
  auto code = [&](SequenceParams p) { return (*s)->submit(std::move(p), nullptr).status(); };
  EXPECT_EQ(code(greedy({}, 4)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(greedy(std::vector<int32_t>(1024, 5), 4)).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(code(greedy({0, 99999}, 4)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(greedy({0, 5}, 0)).code(), StatusCode::kInvalidArgument);
  SequenceParams bad = greedy({0, 5}, 4);
  bad.sampling.temperature = -1;
  EXPECT_EQ(code(bad).code(), StatusCode::kInvalidArgument);
  bad = greedy({0, 5}, 4);
  bad.stop_strings = {""};
  EXPECT_EQ(code(bad).code(), StatusCode::kInvalidArgument);
  const Status big = code(greedy({0, 5}, 1000));  // may grow past the 64 KiB budget
  EXPECT_EQ(big.code(), StatusCode::kOutOfRange);
  EXPECT_NE(big.message().find("kv budget"), std::string::npos) << big.to_string();
}

}  // namespace
}  // namespace frugal::serve

// The model and cache pieces of speculative decoding on the synthetic checkpoint (window 8, ratios
// 0/4/8/4 and a window-only MTP block): forward_mtp equals the MTP block run inside forward, and
// the cache's undo log returns it to exactly the state of a run that never saw the rolled-back
// positions. Comparing a k + 1 token verify pass with a run of fewer tokens byte for byte needs the
// kernels that give the same bits whatever the number of tokens in a forward: the scalar oracle
// (model.h; the AVX2 and AVX-512 GEMM paths order a row's sum differently for several tokens).
// A rollback of a whole round compares a cache with itself, so that one runs on every ISA.
#include <gtest/gtest.h>

#include <random>

#include "v4_random.h"

namespace frugal::v4 {
namespace {

using namespace frugal::v4::testing;

std::vector<kernels::Isa> exact_isas() { return {kernels::Isa::kScalar}; }

std::vector<int32_t> random_tokens(std::mt19937& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return ids;
}

void expect_same_cache(const kv::V4SequenceCache& a, const kv::V4SequenceCache& b,
                       const std::string& what) {
  auto sa = a.snapshot(), sb = b.snapshot();
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_EQ(sa->length, sb->length) << what;
  EXPECT_EQ(sa->mtp_length, sb->mtp_length) << what;
  ASSERT_EQ(sa->parts.size(), sb->parts.size());
  for (size_t i = 0; i < sa->parts.size(); ++i) {
    EXPECT_TRUE(sa->parts[i] == sb->parts[i])
        << what << ": block " << i / 4 << " part " << i % 4 << " (window, compressed, keys, state)";
  }
}

// forward with the MTP block inside (mtp_next_ids) == forward with the streams out, then
// forward_mtp on them: logits and cache equal bit for bit; n - 1 next ids leave the last position
// to forward_mtp.
TEST(V4Speculation, ForwardMtpEqualsTheMtpBlockInsideForward) {
  for (kernels::Isa isa : exact_isas()) {
    auto m = load_model({}, 64, isa);
    ASSERT_NE(m, nullptr);
    const int64_t v = m->config().vocab_size, hd = m->config().hc_dim();
    std::mt19937 rng(3);
    const std::vector<int32_t> ids = random_tokens(rng, 21, v);
    const std::span<const int32_t> in(ids.data(), 20), next(ids.data() + 1, 20);
    std::vector<float> logits(v), mtp_a(20 * v), mtp_b(20 * v), hidden(20 * hd);
    auto a = new_cache(*m, kv::CacheFormat::kFp8), b = new_cache(*m, kv::CacheFormat::kFp8);
    ASSERT_TRUE(m->forward(*a, {.ids = in,
                                .logits = logits,
                                .mtp_next_ids = next,
                                .mtp_logits_mode = LogitsMode::kAll,
                                .mtp_logits = mtp_a})
                    .ok());
    // b: the main model with its streams out, the MTP block in two calls of 12 and 8 positions.
    ASSERT_TRUE(
        m->forward(*b,
                   {.ids = in, .logits = logits, .hidden_mode = LogitsMode::kAll, .hidden = hidden})
            .ok());
    EXPECT_EQ(b->mtp_length(), 0);
    for (int64_t p0 : {0, 12}) {
      const int64_t n = p0 == 0 ? 12 : 8;
      const Status s =
          m->forward_mtp(*b, {.hidden = std::span<const float>(hidden.data() + p0 * hd, n * hd),
                              .next_ids = next.subspan(p0, n),
                              .logits_mode = LogitsMode::kAll,
                              .logits = std::span(mtp_b.data() + p0 * v, n * v)});
      ASSERT_TRUE(s.ok()) << s.to_string();
    }
    EXPECT_TRUE(mtp_a == mtp_b) << kernels::isa_name(isa);
    expect_same_cache(*a, *b, std::string(kernels::isa_name(isa)) + " all positions");

    // n - 1 next ids: the MTP block stops one short; forward_mtp runs the last position.
    auto c = new_cache(*m, kv::CacheFormat::kFp8);
    std::vector<float> last_hidden(hd), last_mtp(v);
    ASSERT_TRUE(m->forward(*c, {.ids = in,
                                .logits = logits,
                                .mtp_next_ids = next.subspan(0, 19),
                                .hidden_mode = LogitsMode::kLast,
                                .hidden = last_hidden})
                    .ok());
    EXPECT_EQ(c->mtp_length(), 19);
    ASSERT_TRUE(
        m->forward_mtp(*c,
                       {.hidden = last_hidden, .next_ids = next.subspan(19, 1), .logits = last_mtp})
            .ok());
    EXPECT_TRUE(std::equal(last_mtp.begin(), last_mtp.end(), mtp_a.begin() + 19 * v));
    expect_same_cache(*a, *c, std::string(kernels::isa_name(isa)) + " one short");
  }
}

// Speculation rounds with random drafts, draft counts and accept counts, across many window (8)
// and compression block (4 and 8) boundaries: cache `spec` drafts with a chain of MTP steps,
// verifies k + 1 tokens and rolls back; cache `ref` only ever sees the kept tokens. After every
// round the two are byte-equal, MTP block included.
TEST(V4Speculation, RollbackLeavesTheCacheAsIfTheRejectedTokensNeverCame) {
  for (kernels::Isa isa : exact_isas()) {
    auto m = load_model({}, 64, isa);
    ASSERT_NE(m, nullptr);
    const int64_t v = m->config().vocab_size, hd = m->config().hc_dim();
    std::mt19937 rng(11);
    auto spec = new_cache(*m, kv::CacheFormat::kFp8), ref = new_cache(*m, kv::CacheFormat::kFp8);
    std::vector<float> logits(4 * v), hidden(4 * hd), hidden_ref(4 * hd), chain(hd), mtp(v);
    // Start: 5 tokens with the MTP block on all but the last in both caches.
    const std::vector<int32_t> start = random_tokens(rng, 6, v);
    for (auto* c : {spec.get(), ref.get()}) {
      ASSERT_TRUE(m->forward(*c, {.ids = std::span(start.data(), 5),
                                  .logits = logits,
                                  .mtp_next_ids = std::span(start.data() + 1, 4),
                                  .hidden_mode = LogitsMode::kLast,
                                  .hidden = std::span(hidden.data(), hd)})
                      .ok());
    }
    std::copy(hidden.begin(), hidden.begin() + hd, hidden_ref.begin());
    int64_t pending = 1;  // positions the MTP block has not run (their streams in hidden[_ref])
    std::vector<int32_t> pending_next(4);
    int32_t token = start[5];
    std::string pattern;
    for (int round = 0; round < 48; ++round) {
      const int64_t k = 1 + static_cast<int64_t>(rng() % 3);
      const int64_t a = static_cast<int64_t>(rng() % (k + 1));  // drafts accepted
      const int64_t L = spec->length();
      pattern += std::to_string(a) + "/" + std::to_string(k) + " ";
      pending_next[pending - 1] = token;
      // Both: the pending MTP positions with the main streams (exact, no log).
      for (auto [c, h] : {std::pair{spec.get(), &hidden}, std::pair{ref.get(), &hidden_ref}}) {
        ASSERT_TRUE(m->forward_mtp(*c, {.hidden = std::span<const float>(h->data(), pending * hd),
                                        .next_ids = std::span(pending_next.data(), pending),
                                        .logits = mtp,
                                        .hidden_out = chain})
                        .ok());
      }
      // spec: k - 1 chained MTP steps and a verify pass over token + k drafts, then rollback.
      std::vector<int32_t> verify = random_tokens(rng, k + 1, v);
      verify[0] = token;
      ASSERT_TRUE(spec->begin_speculation(k + 1).ok());
      for (int64_t j = 1; j < k; ++j) {
        const int32_t prev[1] = {verify[j]};
        ASSERT_TRUE(
            m->forward_mtp(*spec,
                           {.hidden = chain, .next_ids = prev, .logits = mtp, .hidden_out = chain})
                .ok());
      }
      ASSERT_TRUE(m->forward(*spec, {.ids = verify,
                                     .logits_mode = LogitsMode::kAll,
                                     .logits = std::span(logits.data(), (k + 1) * v),
                                     .hidden_mode = LogitsMode::kAll,
                                     .hidden = std::span(hidden.data(), (k + 1) * hd)})
                      .ok());
      const Status rb = spec->rollback(L + 1 + a, L);
      ASSERT_TRUE(rb.ok()) << rb.to_string();
      // ref: only the kept tokens.
      ASSERT_TRUE(m->forward(*ref, {.ids = std::span(verify.data(), a + 1),
                                    .logits = std::span(logits.data(), v),
                                    .hidden_mode = LogitsMode::kAll,
                                    .hidden = std::span(hidden_ref.data(), (a + 1) * hd)})
                      .ok());
      ASSERT_TRUE(
          std::equal(hidden_ref.begin(), hidden_ref.begin() + (a + 1) * hd, hidden.begin()));
      expect_same_cache(*spec, *ref,
                        std::string(kernels::isa_name(isa)) + " after rounds " + pattern);
      if (::testing::Test::HasFailure()) return;
      pending = a + 1;
      for (int64_t i = 0; i < a; ++i) pending_next[i] = verify[i + 1];
      token = static_cast<int32_t>(rng() % static_cast<uint32_t>(v));
    }
    EXPECT_GT(spec->length(), 3 * 8);  // several windows and compression blocks crossed
  }
}

// Rolling a whole round back (nothing kept) restores the bytes from before it on every ISA:
// the verify pass crosses window and compression boundaries, the MTP chain runs ahead.
TEST(V4Speculation, RollingAWholeRoundBackRestoresEveryByte) {
  for (kernels::Isa isa : kernels::supported_isas()) {
    auto m = load_model({}, 64, isa);
    ASSERT_NE(m, nullptr);
    const int64_t v = m->config().vocab_size, hd = m->config().hc_dim();
    std::mt19937 rng(5);
    auto c = new_cache(*m, kv::CacheFormat::kFp8);
    std::vector<float> logits(4 * v), hidden(hd), mtp(v);
    for (int64_t start : {5, 6, 7, 13, 14, 15, 16}) {
      c->clear();
      const std::vector<int32_t> ids = random_tokens(rng, start + 4, v);
      ASSERT_TRUE(m->forward(*c, {.ids = std::span(ids.data(), start),
                                  .logits = logits,
                                  .mtp_next_ids = std::span(ids.data() + 1, start),
                                  .hidden_mode = LogitsMode::kLast,
                                  .hidden = hidden})
                      .ok());
      auto before = c->snapshot();
      ASSERT_TRUE(before.ok());
      ASSERT_TRUE(c->begin_speculation(4).ok());
      const int32_t next[1] = {ids[start + 1]};
      ASSERT_TRUE(m->forward_mtp(*c, {.hidden = hidden, .next_ids = next, .logits = mtp}).ok());
      ASSERT_TRUE(m->forward(*c, {.ids = std::span(ids.data() + start, 4),
                                  .logits_mode = LogitsMode::kAll,
                                  .logits = logits})
                      .ok());
      ASSERT_TRUE(c->rollback(start, start).ok());
      auto after = c->snapshot();
      ASSERT_TRUE(after.ok());
      ASSERT_EQ(before->parts.size(), after->parts.size());
      for (size_t i = 0; i < after->parts.size(); ++i) {
        EXPECT_TRUE(before->parts[i] == after->parts[i])
            << kernels::isa_name(isa) << " start " << start << ": block " << i / 4 << " part "
            << i % 4;
      }
    }
  }
}

TEST(V4Speculation, RollbackChecksItsArguments) {
  auto m = load_model();
  ASSERT_NE(m, nullptr);
  auto c = new_cache(*m, kv::CacheFormat::kFp8);
  std::vector<float> logits(m->config().vocab_size);
  const int32_t ids[3] = {1, 2, 3};
  EXPECT_FALSE(c->rollback(0, 0).ok());  // nothing begun
  ASSERT_TRUE(m->forward(*c, {.ids = ids, .logits = logits}).ok());
  ASSERT_TRUE(c->begin_speculation(2).ok());
  EXPECT_FALSE(c->begin_speculation(2).ok());  // one at a time
  ASSERT_TRUE(m->forward(*c, {.ids = std::span(ids, 2), .logits = logits}).ok());
  const Status below = c->rollback(2, 0);
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.message().find("between 3 / 0 and 5 / 0"), std::string::npos) << below.message();
  EXPECT_FALSE(c->rollback(6, 0).ok());
  EXPECT_TRUE(c->rollback(4, 0).ok());
  EXPECT_EQ(c->length(), 4);
  EXPECT_FALSE(c->speculating());
  EXPECT_FALSE(c->begin_speculation(0).ok());
  // forward_mtp's own checks name what is wrong.
  std::vector<float> hidden(m->config().hc_dim());
  const int32_t bad[1] = {-1};
  const Status s = m->forward_mtp(*c, {.hidden = hidden, .next_ids = bad, .logits = logits});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("next_ids[0] = -1"), std::string::npos) << s.message();
  const Status h = m->forward_mtp(
      *c, {.hidden = std::span<const float>(hidden.data(), 3), .next_ids = ids, .logits = logits});
  EXPECT_FALSE(h.ok());
}

}  // namespace
}  // namespace frugal::v4

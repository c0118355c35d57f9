// The embedding read by rows under a memory budget (stream::EmbedRows): the rows equal the
// resident table's bit for bit (O_DIRECT and buffered), a model that reads them so gives the
// resident model's logits bit for bit (main blocks and the MTP block, with streamed experts too),
// and a missing source or a file changed on disk is an error naming what is wrong.
#include "stream/embed_rows.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "quant/weight.h"
#include "stream_test_util.h"

namespace frugal::stream {
namespace {

using namespace stream_test;

std::unique_ptr<v4::Model> load_rows(const std::string& dir, bool stream_experts) {
  v4::LoadOptions lo;
  lo.stream_embed = true;
  lo.stream_experts = stream_experts;
  auto m = v4::Model::load(dir, test_kernels(), lo, {.max_chunk = 16, .max_seq_len = 512});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return m.ok() ? std::move(*m) : nullptr;
}

std::unique_ptr<EmbedRows> make_rows(const v4::Model& m, bool direct = true) {
  auto r = EmbedRows::create(m.weights(), direct);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : nullptr;
}

TEST(EmbedRows, RowsEqualTheResidentTable) {
  auto resident = load(tiny_dir(), false);
  auto m = load_rows(tiny_dir(), false);
  ASSERT_TRUE(resident != nullptr && m != nullptr);
  EXPECT_TRUE(m->weights().streamed_embed);
  EXPECT_EQ(m->weights().embed.data, nullptr);  // nothing of the table mapped into a view
  const int64_t v = m->config().vocab_size, d = m->config().dim;
  const std::vector<int32_t> ids = {0,  1,  static_cast<int32_t>(v - 1),
                                    17, 17, static_cast<int32_t>(v / 2)};
  std::vector<float> want(ids.size() * d);
  for (size_t i = 0; i < ids.size(); ++i) {
    quant::dequantize_row(resident->weights().embed, ids[i], want.data() + i * d);
  }
  for (bool direct : {true, false}) {
    auto rows = make_rows(*m, direct);
    ASSERT_NE(rows, nullptr);
    std::vector<float> got(ids.size() * d, -1.0f);
    const Status s = rows->rows(ids, got.data());
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << direct;
    EXPECT_EQ(rows->rows_read(), ids.size());
    EXPECT_GE(rows->bytes_read(), ids.size() * d * 2);  // bf16 rows, whole pages each
    EXPECT_EQ(rows->bytes_read() % kDirectIoAlign, 0u);
  }
}

TEST(EmbedRows, StreamedModelGivesTheResidentLogits) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  const std::vector<float> want = run(*resident, 20, 8);
  for (bool experts : {false, true}) {
    auto m = load_rows(tiny_dir(), experts);
    ASSERT_NE(m, nullptr);
    std::unique_ptr<ExpertCache> cache;
    std::unique_ptr<EmbedRows> rows;
    if (experts) {  // as the engine does: the rows read through the cache's open files
      cache = make_cache(*m, 4);
      ASSERT_NE(cache, nullptr);
      m->set_expert_source(cache.get());
      auto r = EmbedRows::create(m->weights(), true, cache->files());
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      rows = std::move(*r);
      EXPECT_EQ(rows->files(), cache->files().get());
    } else {
      rows = make_rows(*m);
      ASSERT_NE(rows, nullptr);
    }
    {  // No source yet: a clear error, the sequence untouched.
      int64_t length = -1;
      const Status s = forward_one_token(*m, &length);
      ASSERT_FALSE(s.ok());
      EXPECT_NE(s.message().find("set_embed_source"), std::string::npos) << s.to_string();
      EXPECT_EQ(length, 0);
    }
    m->set_embed_source(rows.get());
    EXPECT_TRUE(same_bits(run(*m, 20, 8), want)) << "streamed experts " << experts;
    EXPECT_EQ(rows->rows_read(), 28u);  // one row per token: 20 + 8
  }
}

// The MTP block embeds the next tokens through the same source.
TEST(EmbedRows, MtpBlockGivesTheResidentLogits) {
  auto resident = load(tiny_dir(), false);
  auto m = load_rows(tiny_dir(), false);
  ASSERT_TRUE(resident != nullptr && m != nullptr);
  auto rows = make_rows(*m);
  ASSERT_NE(rows, nullptr);
  m->set_embed_source(rows.get());
  const int64_t v = m->config().vocab_size;
  const std::vector<int32_t> ids = {5, 9, 200, 7, 3000, 12, 1, 4095, 64};
  const std::span<const int32_t> in(ids.data(), 8), next(ids.data() + 1, 8);
  auto logits_of = [&](v4::Model& model) {
    std::vector<float> logits(v), mtp(8 * v);
    auto kv = new_cache(model, kv::CacheFormat::kFp8);
    const Status s = model.forward(*kv, {.ids = in,
                                         .logits = logits,
                                         .mtp_next_ids = next,
                                         .mtp_logits_mode = v4::LogitsMode::kAll,
                                         .mtp_logits = mtp});
    EXPECT_TRUE(s.ok()) << s.to_string();
    return mtp;
  };
  EXPECT_TRUE(same_bits(logits_of(*m), logits_of(*resident)));
  EXPECT_EQ(rows->rows_read(), 16u);  // 8 tokens, 8 next tokens
}

// A checkpoint changed on disk after the load: the row read fails naming the file and the tensor,
// and the forward leaves the sequence as it was.
TEST(EmbedRows, ChangedFileIsAnErrorNamingFileAndTensor) {
  test::ScopedTempDir tmp("embed-rows");
  const std::string dir = copy_tiny(tmp);
  auto m = load_rows(dir, false);
  ASSERT_NE(m, nullptr);
  auto rows = make_rows(*m);
  ASSERT_NE(rows, nullptr);
  m->set_embed_source(rows.get());
  const std::string file = dir + "/model.safetensors";
  ASSERT_EQ(::truncate(file.c_str(), static_cast<off_t>(std::filesystem::file_size(file) / 2)), 0);
  auto kv = new_cache(*m, kv::CacheFormat::kFp8);
  std::vector<float> logits(static_cast<size_t>(m->config().vocab_size));
  const std::vector<int32_t> ids = {3, 4, 5};
  const Status s = m->forward(*kv, {.ids = ids, .logits = logits});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(file), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("changed on disk"), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("embed.weight"), std::string::npos) << s.to_string();
  EXPECT_EQ(kv->length(), 0);
}

TEST(EmbedRows, NeedsWeightsLoadedToStreamIt) {
  auto resident = load(tiny_dir(), false);
  ASSERT_NE(resident, nullptr);
  const auto r = EmbedRows::create(resident->weights(), true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("stream_embed"), std::string::npos) << r.status().to_string();
}

}  // namespace
}  // namespace frugal::stream

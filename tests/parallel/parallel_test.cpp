// A parallel run against one process (docs/PARALLEL.md): run by mpirun (tests/parallel/
// CMakeLists.txt: -np 2 and -np 4), every process runs every test in the same order. Each loads
// its shard through the engine (expert parallel, pipeline stages, both) and runs prefill spans,
// decode steps, the MTP block and batched steps; each also loads the whole model alone, runs the
// same calls, and compares: the logits must be the same bytes (memcmp), since each expert is
// computed by exactly one process with the same kernels on the same rows and every token still
// sums its experts in ascending id (the reference's order). Also: each process holds exactly its
// share of the weights, its cache grows only its own blocks, and a shard that cannot load or a
// process on a different checkpoint stops every process with an error naming the rank.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/streaming.h"
#include "format/safetensors.h"
#include "model/v4/synth.h"
#include "model/v4/tensor_table.h"
#include "parallel/world.h"
#include "support/temp_dir.h"

namespace frugal {
namespace {

std::string tiny_model() { return std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4"; }

// The synthetic checkpoint of tests/fixtures/v4-random (MTP block, hash layer, CSA and HCA
// blocks, 8 experts), written once by each process into its own folder.
const std::string& random_model() {
  static const std::string dir = [] {
    const std::string d = test::process_temp_dir().file("v4-random");
    auto cfg = v4::load_config(std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/v4-random");
    EXPECT_TRUE(cfg.ok()) << cfg.status().to_string();
    const Status s = v4::write_synth_checkpoint(*cfg, d, {.seed = 1});
    EXPECT_TRUE(s.ok()) << s.to_string();
    return d;
  }();
  return dir;
}

engine::EngineOptions options(const std::string& dir, bool experts, int stages) {
  engine::EngineOptions o;
  o.model_dir = dir;
  o.threads = 1;  // the processes share this machine's cores
  o.max_seq_len = 1024;
  o.max_batch = 2;
  o.load_tokenizer = false;
  o.progress = false;
  o.parallel_experts = experts;
  o.pipeline_stages = stages;
  return o;
}

std::vector<int32_t> token_ids(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint64_t x = 12345;
  for (int32_t& id : ids) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((x >> 33) % static_cast<uint64_t>(vocab));
  }
  return ids;
}

// Everything a model computed on a fixed script of calls.
struct Outputs {
  std::vector<float> prefill, decode, mtp, mtp_logits, batch;
  uint64_t cache_bytes = 0;  // the prefilled sequence's cache
};

using CacheMaker = std::function<std::unique_ptr<kv::V4SequenceCache>()>;

std::unique_ptr<kv::V4SequenceCache> take(Result<std::unique_ptr<kv::V4SequenceCache>> r) {
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : nullptr;
}

Outputs run_script(v4::Model& m, const CacheMaker& new_cache, bool with_mtp) {
  const int64_t V = m.config().vocab_size;
  const std::vector<int32_t> ids = token_ids(340, V);
  auto span = [&](int64_t a, int64_t b) {
    return std::span<const int32_t>(ids.data() + a, static_cast<size_t>(b - a));
  };
  Outputs out;
  // A prompt over several spans (4 chunks of 64 each) and chunks, every position's logits.
  auto c1 = new_cache();
  out.prefill.resize(static_cast<size_t>(300 * V));
  EXPECT_TRUE(
      m.forward(*c1,
                {.ids = span(0, 300), .logits_mode = v4::LogitsMode::kAll, .logits = out.prefill})
          .ok());
  out.decode.resize(static_cast<size_t>(3 * V));
  for (int64_t t = 0; t < 3; ++t) {  // decode steps
    EXPECT_TRUE(m.forward(*c1, {.ids = span(300 + t, 301 + t),
                                .logits = {out.decode.data() + t * V, static_cast<size_t>(V)}})
                    .ok());
  }
  out.cache_bytes = c1->memory_report().total();
  if (with_mtp) {  // the MTP block beside the main blocks
    auto c2 = new_cache();
    out.mtp.resize(static_cast<size_t>(V));
    out.mtp_logits.resize(static_cast<size_t>(V));
    EXPECT_TRUE(m.forward(*c2, {.ids = span(0, 40),
                                .logits = out.mtp,
                                .mtp_next_ids = span(1, 41),
                                .mtp_logits_mode = v4::LogitsMode::kLast,
                                .mtp_logits = out.mtp_logits})
                    .ok());
  }
  // Two sequences in one batched step (a prompt with its last logits, one with all), then one
  // decode step of both.
  auto c3 = new_cache(), c4 = new_cache();
  out.batch.resize(static_cast<size_t>(13 * V));
  std::span<float> b(out.batch);
  const v4::BatchEntry step1[] = {{.cache = c3.get(), .ids = span(0, 20), .logits = b.first(V)},
                                  {.cache = c4.get(),
                                   .ids = span(5, 15),
                                   .logits_mode = v4::LogitsMode::kAll,
                                   .logits = b.subspan(V, 10 * V)}};
  EXPECT_TRUE(m.forward_batch(step1).ok());
  const v4::BatchEntry step2[] = {
      {.cache = c3.get(), .ids = span(20, 21), .logits = b.subspan(11 * V, V)},
      {.cache = c4.get(), .ids = span(15, 16), .logits = b.subspan(12 * V, V)}};
  EXPECT_TRUE(m.forward_batch(step2).ok());
  return out;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The shard of `dir` under `experts` / `stages` through the engine against the whole model
// alone, on every process.
void expect_same_as_one_process(const std::string& dir, bool experts, int stages) {
  const engine::EngineOptions eo = options(dir, experts, stages);
  auto eng = engine::Engine::load(eo);
  ASSERT_TRUE(eng.ok()) << eng.status().to_string();
  const v4::Shard& shard = (*eng)->model().weights().shard;
  EXPECT_EQ(shard.ranks, parallel::world_size());
  const bool mtp = (*eng)->config().n_mtp_layers > 0 && shard.stages == 1;
  const Outputs par = run_script((*eng)->model(), [&] { return take((*eng)->new_cache()); }, mtp);

  auto whole = v4::Model::load(dir, (*eng)->kernels(), {}, engine::model_options(eo));
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  const Outputs one = run_script(
      **whole,
      [&] { return take(kv::V4SequenceCache::create((*whole)->config(), {.format = eo.cache})); },
      mtp);
  EXPECT_TRUE(same_bytes(par.prefill, one.prefill))
      << shard.describe() << ": prefill logits differ";
  EXPECT_TRUE(same_bytes(par.decode, one.decode)) << shard.describe() << ": decode logits differ";
  EXPECT_TRUE(same_bytes(par.mtp, one.mtp)) << shard.describe();
  EXPECT_TRUE(same_bytes(par.mtp_logits, one.mtp_logits)) << shard.describe() << ": MTP logits";
  EXPECT_TRUE(same_bytes(par.batch, one.batch)) << shard.describe() << ": batched logits differ";
  if (shard.stages > 1) {  // a stage's cache grows only its own blocks
    EXPECT_LT(par.cache_bytes, one.cache_bytes) << shard.describe();
  } else {
    EXPECT_EQ(par.cache_bytes, one.cache_bytes) << shard.describe();
  }
}

TEST(ExpertParallel, TinyLogitsEqualOneProcess) {
  expect_same_as_one_process(tiny_model(), true, 1);
}
TEST(ExpertParallel, SyntheticLogitsEqualOneProcess) {  // with the MTP block
  expect_same_as_one_process(random_model(), true, 1);
}
// Each process streams its own experts under a budget of its own, small enough that its cache
// evicts: the logits still equal the whole model's, resident, alone.
TEST(ExpertParallel, StreamedUnderABudgetLogitsEqualOneProcess) {
  for (const int stages : {1, parallel::world_size() >= 4 ? 2 : 1}) {
    engine::EngineOptions eo = options(random_model(), true, stages);
    auto cfg = v4::load_config(random_model());
    ASSERT_TRUE(cfg.ok());
    auto shard = v4::make_shard(*cfg, parallel::world_rank(), parallel::world_size(), stages);
    ASSERT_TRUE(shard.ok()) << shard.status().to_string();
    auto plan = engine::plan_budget_for(eo, *cfg, &*shard, uint64_t{1} << 40);
    ASSERT_TRUE(plan.ok()) << plan.status().to_string();
    ASSERT_GT(plan->streamed_experts, plan->min_slots) << "the budget must force evictions";
    eo.mem_budget = plan->min_budget;  // the fewest slots: 2 x n_activated_experts
    auto eng = engine::Engine::load(eo);
    ASSERT_TRUE(eng.ok()) << eng.status().to_string();
    ASSERT_NE((*eng)->expert_cache(), nullptr);
    EXPECT_EQ((*eng)->expert_cache()->slots(), plan->min_slots);
    const Outputs par =
        run_script((*eng)->model(), [&] { return take((*eng)->new_cache()); }, stages == 1);
    const stream::ExpertCacheStats st = (*eng)->expert_cache()->stats();
    EXPECT_GT(st.misses + st.prefetch_reads, static_cast<uint64_t>(plan->min_slots))
        << "more reads than slots: some expert was evicted";
    auto whole = v4::Model::load(random_model(), (*eng)->kernels(), {}, engine::model_options(eo));
    ASSERT_TRUE(whole.ok()) << whole.status().to_string();
    const Outputs one = run_script(
        **whole,
        [&] { return take(kv::V4SequenceCache::create((*whole)->config(), {.format = eo.cache})); },
        stages == 1);
    EXPECT_TRUE(same_bytes(par.prefill, one.prefill)) << shard->describe();
    EXPECT_TRUE(same_bytes(par.decode, one.decode)) << shard->describe();
    EXPECT_TRUE(same_bytes(par.mtp_logits, one.mtp_logits)) << shard->describe();
    EXPECT_TRUE(same_bytes(par.batch, one.batch)) << shard->describe();
  }
}

TEST(PipelineParallel, TinyLogitsEqualOneProcess) {
  expect_same_as_one_process(tiny_model(), false, parallel::world_size());
}
TEST(PipelineParallel, SyntheticLogitsEqualOneProcess) {
  expect_same_as_one_process(random_model(), false, parallel::world_size());
}
TEST(PipelineAndExperts, LogitsEqualOneProcess) {
  if (parallel::world_size() % 2 != 0 || parallel::world_size() < 4) {
    GTEST_SKIP() << "needs 4 processes or more (2 stages of 2 or more)";
  }
  expect_same_as_one_process(tiny_model(), true, 2);
  expect_same_as_one_process(random_model(), true, 2);
}

// A larger checkpoint named by FRUGAL_PARALLEL_TEST_MODEL (e.g. `frugal synth --preset v4-flash
// --layers 2`: V4-Flash's dims, 12 GiB), for a check by hand: expert parallel over every process,
// and 2 stages (of one process each, or with the experts shared in each) when the model has the
// blocks for them.
TEST(ModelFromEnvironment, LogitsEqualOneProcess) {
  const char* dir = std::getenv("FRUGAL_PARALLEL_TEST_MODEL");
  if (dir == nullptr || *dir == '\0') GTEST_SKIP() << "FRUGAL_PARALLEL_TEST_MODEL is not set";
  expect_same_as_one_process(dir, true, 1);
  if (parallel::world_size() % 2 == 0) {
    expect_same_as_one_process(dir, parallel::world_size() > 2, 2);
  }
}

TEST(PipelineParallel, MtpRefusedWithAClearError) {
  if (parallel::world_size() < 2) GTEST_SKIP() << "one process";
  auto eng = engine::Engine::load(options(random_model(), false, parallel::world_size()));
  ASSERT_TRUE(eng.ok()) << eng.status().to_string();
  const std::vector<int32_t> ids = token_ids(8, (*eng)->config().vocab_size);
  std::vector<float> logits(static_cast<size_t>((*eng)->config().vocab_size));
  auto cache = (*eng)->new_cache();
  const Status st =
      (*eng)->model().forward(**cache, {.ids = std::span(ids).first(4),
                                        .logits = logits,
                                        .mtp_next_ids = std::span(ids).subspan(1, 4)});
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("pipeline stage"), std::string::npos) << st.message();
}

// With the weights copied into memory, each process copies exactly its tensors: the whole
// model's bytes less the routed experts (and blocks) other processes hold.
TEST(Shares, EachProcessHoldsItsShare) {
  for (const int stages : {1, parallel::world_size()}) {
    engine::EngineOptions eo = options(random_model(), true, stages);
    eo.weights_in_ram = true;
    auto eng = engine::Engine::load(eo);
    ASSERT_TRUE(eng.ok()) << eng.status().to_string();
    const v4::ModelWeights& w = (*eng)->model().weights();
    const v4::TensorTable table(w.config);
    auto whole = v4::load_weights(random_model(), {.placement = v4::WeightPlacement::kHugePages});
    ASSERT_TRUE(whole.ok()) << whole.status().to_string();
    uint64_t others = 0;
    for (const v4::TensorSpec& spec : table.entries()) {
      if (v4::holds_tensor(w.shard, spec)) continue;
      const format::TensorInfo* t = w.checkpoint.find(spec.name);
      // Tensors copied into huge pages are the linear weights and their scales (what
      // Binder::linear binds): the 2-D tensors but the f32 hc and ape tables and tid2eid.
      using K = v4::TensorKind;
      const bool linear = spec.shape.size() == 2 && spec.kind != K::kHcAttnFn &&
                          spec.kind != K::kHcFfnFn && spec.kind != K::kHcHeadFn &&
                          spec.kind != K::kCompressorApe && spec.kind != K::kIndexerCompressorApe &&
                          spec.kind != K::kGateTid2eid;
      if (linear) others += (t->size + 63) / 64 * 64;
    }
    const uint64_t expected = (*whole)->placed_bytes - others;
    EXPECT_EQ(w.placed_bytes, expected) << w.shard.describe();
    if (w.shard.expert_ranks > 1) {
      EXPECT_LT(w.placed_bytes, (*whole)->placed_bytes);
    }
  }
}

// The file /proc/self/maps says maps the page at `p` ("" for anonymous memory).
std::string mapping_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || a < lo || a >= hi) continue;
    const size_t slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  return "";
}

// A process does not map the tensors other processes hold: the pages of another's expert are
// not the checkpoint file's any more, those of its own are.
TEST(Shares, OtherProcessesTensorsAreNotMapped) {
  if (parallel::world_size() < 2) GTEST_SKIP() << "one process";
  auto eng = engine::Engine::load(options(tiny_model(), true, 1));  // experts of 32 KiB
  ASSERT_TRUE(eng.ok()) << eng.status().to_string();
  const v4::ModelWeights& w = (*eng)->model().weights();
  const v4::TensorTable table(w.config);
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  int checked_other = 0, checked_own = 0;
  for (const v4::TensorSpec& spec : table.entries()) {
    if (spec.kind != v4::TensorKind::kExpertW1) continue;
    const format::TensorInfo* t = w.checkpoint.find(spec.name);
    ASSERT_NE(t, nullptr);
    const auto begin = reinterpret_cast<uintptr_t>(t->data.data());
    const uintptr_t first = (begin + page - 1) / page * page;
    if (first + page > begin + t->size) continue;  // no whole page inside
    const std::string file = mapping_of(reinterpret_cast<const void*>(first));
    if (v4::holds_tensor(w.shard, spec)) {
      EXPECT_EQ(file, *t->file) << spec.name;
      ++checked_own;
    } else {
      EXPECT_EQ(file, "") << spec.name << " of another process is still mapped from " << file;
      ++checked_other;
    }
  }
  EXPECT_GT(checked_other, 0);
  EXPECT_GT(checked_own, 0);
}

// Writes 0xff (an e8m0 NaN) into the first scale byte of tensor `name` of the checkpoint `dir`.
void corrupt_scale(const std::string& dir, const std::string& name) {
  std::string file;
  uint64_t offset = 0;
  {
    auto ck = format::Checkpoint::open(dir);
    ASSERT_TRUE(ck.ok()) << ck.status().to_string();
    const format::TensorInfo* t = ck->find(name);
    ASSERT_NE(t, nullptr) << name;
    file = *t->file;
    offset = t->offset;
  }  // unmapped before the write
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  const char nan = static_cast<char>(0xff);
  f.write(&nan, 1);
  ASSERT_TRUE(f.good()) << file;
}

TEST(Failures, AShardThatDoesNotLoadStopsEveryProcessNamingItsRank) {
  if (parallel::world_size() < 2) GTEST_SKIP() << "one process";
  const test::ScopedTempDir tmp("parallel-bad");
  const std::string dir = tmp.file("model");
  auto cfg = v4::load_config(random_model());
  ASSERT_TRUE(cfg.ok());
  ASSERT_TRUE(v4::write_synth_checkpoint(*cfg, dir, {.seed = 1}).ok());
  const int last = parallel::world_size() - 1;
  const std::string bad =
      "layers.1.ffn.experts." + std::to_string(cfg->n_routed_experts - 1) + ".w1.scale";
  if (parallel::world_rank() == last) corrupt_scale(dir, bad);  // its own expert
  auto eng = engine::Engine::load(options(dir, true, 1));
  ASSERT_FALSE(eng.ok());
  const std::string msg = eng.status().message();
  EXPECT_NE(msg.find("rank " + std::to_string(last) + " could not load its shard"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  EXPECT_EQ(msg.find("rank 0 could not"), std::string::npos) << msg;  // rank 0 loaded
}

TEST(Failures, ADifferentCheckpointOnOneProcessIsNamed) {
  if (parallel::world_size() < 2) GTEST_SKIP() << "one process";
  const test::ScopedTempDir tmp("parallel-other");
  const std::string dir = tmp.file("model");
  auto cfg = v4::load_config(random_model());
  ASSERT_TRUE(cfg.ok());
  const int last = parallel::world_size() - 1;
  if (parallel::world_rank() == last) cfg->route_scale = 2.0;  // same tensors, another model
  ASSERT_TRUE(v4::write_synth_checkpoint(*cfg, dir, {.seed = 1}).ok());
  auto eng = engine::Engine::load(options(dir, true, 1));
  ASSERT_FALSE(eng.ok());
  const std::string msg = eng.status().message();
  EXPECT_NE(msg.find("rank " + std::to_string(last) + " ("), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

// Prints the failures of ranks other than 0 (whose standard output goes to /dev/null) on their
// diagnostics stream.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(parallel::diagnostics(), "rank %d: %s:%d: %s\n", parallel::world_rank(),
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
  }
};

}  // namespace
}  // namespace frugal

int main(int argc, char** argv) {
  auto world = frugal::parallel::World::start(&argc, &argv);
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", world.status().to_string().c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  if ((*world)->rank() != 0) {
    ::testing::UnitTest::GetInstance()->listeners().Append(new frugal::RankFailurePrinter());
  }
  return RUN_ALL_TESTS();
}

// frugal bench -m DIR [--prompt N] [--gen N] [--reps R] [--json] [-t T]: end-to-end speed of
// one sequence, batch 1, and how close decode comes to the memory-bandwidth roofline.
//
// Each repetition starts a new sequence: a prefill of N prompt tokens (fixed pseudo-random ids,
// the same every run), then --gen greedy decode steps. Reported: medians over the repetitions.
//   decode_weight_gbps = decode_weight_bytes_per_token x decode tokens/s / 1e9, where the bytes
//     per token are those a decode step reads (engine/memory_plan.h): every non-expert tensor of
//     the main blocks and the head, one embedding row, and num_experts_per_tok routed experts
//     (weights + scales) in every main block. MTP blocks do not run in decode.
//   read_bandwidth_gbps: a streaming sum over a buffer larger than the LLC by the same threads
//     (engine/bandwidth.h), measured in the same run, after the model timings.
//   roofline_fraction = decode_weight_gbps / read_bandwidth_gbps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/command.h"
#include "engine/bandwidth.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"

namespace frugal::cli {
namespace {

struct BenchOptions {
  std::string model;
  int64_t prompt = 128;
  int64_t gen = 32;
  int reps = 3;
  bool json = false;
  int threads = 0;
  std::string cache = "fp8";
  uint64_t bandwidth_mib = 512;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

using Clock = std::chrono::steady_clock;

Status run_bench(const BenchOptions& o) {
  if (o.prompt < 1) return invalid_argument("--prompt must be at least 1");
  engine::EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = o.threads;
  FRUGAL_ASSIGN_OR_RETURN(eo.cache, engine::parse_cache_format(o.cache));
  eo.max_seq_len = o.prompt + o.gen + 1;
  eo.load_tokenizer = false;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  const v4::DeepSeekV4Config& c = eng->config();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache, eng->new_cache());
  std::vector<int32_t> ids(static_cast<size_t>(o.prompt));
  std::mt19937 rng(1234);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::vector<double> prefill_tps, decode_tps;
  for (int r = 0; r < std::max(o.reps, 1); ++r) {
    cache->clear();
    auto t0 = Clock::now();
    FRUGAL_RETURN_IF_ERROR(eng->model().forward(
        *cache, {.ids = ids, .logits_mode = v4::LogitsMode::kLast, .logits = logits}));
    prefill_tps.push_back(static_cast<double>(o.prompt) /
                          std::chrono::duration<double>(Clock::now() - t0).count());
    t0 = Clock::now();
    for (int64_t i = 0; i < o.gen; ++i) {
      const int32_t next[1] = {
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
      FRUGAL_RETURN_IF_ERROR(eng->model().forward(
          *cache, {.ids = next, .logits_mode = v4::LogitsMode::kLast, .logits = logits}));
    }
    if (o.gen > 0) {
      decode_tps.push_back(static_cast<double>(o.gen) /
                           std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  const uint64_t bytes_per_token = engine::decode_weight_bytes_per_token(c);
  FRUGAL_ASSIGN_OR_RETURN(double bw,
                          engine::measure_read_bandwidth(
                              &eng->pool(), {.bytes = o.bandwidth_mib << 20, .repetitions = 5}));
  const double prefill = median(prefill_tps), decode = median(decode_tps);
  const double weight_gbps = static_cast<double>(bytes_per_token) * decode / 1e9;
  const double fraction = bw > 0 ? weight_gbps / bw : 0.0;
  if (o.json) {
    nlohmann::json j = {{"model", o.model},
                        {"threads", eng->pool().n_threads()},
                        {"cache", o.cache},
                        {"prompt_tokens", o.prompt},
                        {"gen_tokens", o.gen},
                        {"repetitions", std::max(o.reps, 1)},
                        {"prefill_tokens_per_s", prefill},
                        {"decode_tokens_per_s", decode},
                        {"decode_weight_bytes_per_token", bytes_per_token},
                        {"decode_weight_gbps", weight_gbps},
                        {"read_bandwidth_gbps", bw},
                        {"roofline_fraction", fraction},
                        {"peak_rss_bytes", engine::peak_rss_bytes()}};
    return write_output(j.dump() + "\n");
  }
  char buf[640];
  std::snprintf(buf, sizeof(buf),
                "model %s, %d threads, %s cache, medians of %d runs\n"
                "prefill %lld tokens: %.1f tok/s\n"
                "decode %lld tokens: %.2f tok/s\n"
                "weights read per decode token: %s -> %.2f GB/s\n"
                "read bandwidth (same run): %.2f GB/s; roofline fraction %.1f %%\n"
                "peak rss %s\n",
                o.model.c_str(), eng->pool().n_threads(), o.cache.c_str(), std::max(o.reps, 1),
                static_cast<long long>(o.prompt), prefill, static_cast<long long>(o.gen), decode,
                engine::format_bytes(bytes_per_token).c_str(), weight_gbps, bw, 100.0 * fraction,
                engine::format_bytes(engine::peak_rss_bytes()).c_str());
  return write_output(buf);
}

}  // namespace

Command add_bench(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "bench", "Prefill and decode speed, weight GB/s per decode token vs measured bandwidth");
  add_model_option(sub, &o->model);
  sub->add_option("--prompt", o->prompt, "Prompt tokens to prefill")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--gen", o->gen, "Decode steps")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--reps", o->reps, "Repetitions (medians are reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", o->json, "One JSON object");
  sub->add_option("-t,--threads", o->threads, "Worker threads (0 = one per CPU)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--cache", o->cache, "KV cache format: fp8, bf16 or f32")->capture_default_str();
  sub->add_option("--bandwidth-mib", o->bandwidth_mib,
                  "Working set of the bandwidth probe, MiB (must exceed the LLC)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace frugal::cli

// frugal bench -m DIR [--prompt N] [--gen N] [--reps R] [--json] [-t T] [--weights-in-ram]
//              [--no-scaling] [--no-kernels]: end-to-end speed of one sequence, batch 1, rated
// against the machine's limits measured in the same run.
//
// Each repetition starts a new sequence: a prefill of N prompt tokens (fixed pseudo-random ids,
// the same every run), then --gen greedy decode steps (--random-tokens: steps fed a fixed
// pseudo-random token stream, so that a random-weight model's routing varies as a real model's
// does). Reported: medians over the repetitions.
//   decode_weight_gbps = decode_weight_bytes_per_token x decode tokens/s / 1e9, where the bytes
//     per token are those a decode step reads (engine/memory_plan.h): every non-expert tensor of
//     the main blocks and the head, one embedding row, and num_experts_per_tok routed experts
//     (weights + scales) in every main block. MTP blocks do not run in decode.
//   read_bandwidth_gbps: Kernels::read_stream over a buffer larger than the LLC on the same
//     threads (engine/probes.h); roofline_fraction = decode_weight_gbps / read_bandwidth_gbps.
//   prefill_matmul_gflops = prefill tokens/s x prefill_matmul_flops_per_token (memory_plan.h),
//     rated against the f32 FMA peak of the same threads (the prefill matmuls are f32 FMA).
//   scaling: the same timings on one thread (unless --no-scaling or -t 1).
//   gemv: Kernels::matmul(m = 1) per weight format on V4-Flash shapes over a ring of matrices
//     larger than the LLC, GB/s and fraction of the read bandwidth (unless --no-kernels).
//   batch (--batch N): N sequences decoded together by Model::forward_batch (the weights read once
//     per step for all of them), aggregate tokens/s against the single-sequence decode of the same
//     run (bench_batch.h).
//   streamed_experts (under --mem-budget, or a model larger than the memory available): the
//     expert cache's figures against same-run disk probes: the decode's own reads replayed, and
//     random extents over the model's files (bench_stream.h).
//   speculative (--spec K, or auto = 1): speculative against plain greedy decoding in the same run,
//     the acceptance rate, the cost of verifying n tokens and of an MTP step, and the speedup
//     those imply at acceptance 0.6 / 0.8 / 0.9 (bench_spec.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_batch.h"
#include "cli/bench_parallel.h"
#include "cli/bench_spec.h"
#include "cli/bench_stream.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/gen_options.h"
#include "engine/disk_probe.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "engine/probes.h"
#include "quant/weight.h"

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
  bool weights_in_ram = false;
  int64_t chunk = 512;
  bool no_scaling = false;
  bool no_kernels = false;
  std::string spec = "off";
  int64_t batch = 1;
  bool random_tokens = false;
  EngineFlags engine;
};

// The RAM probe's buffer under a memory budget (MiB): inside the budget's overhead, and still
// larger than the last-level caches of the machines this runs on.
constexpr uint64_t kStreamProbeMib = 128;

using Clock = std::chrono::steady_clock;

struct Timings {
  int threads = 0;
  double prefill_tps = 0;  // medians
  double decode_tps = 0;
  // With a probe: the read bandwidth measured right after each repetition's decode, and the
  // median of the per-repetition ratios decode weight GB/s / bandwidth.
  double read_gbps = 0;
  double roofline_fraction = 0;
  // The same per repetition (this machine's memory bandwidth can change between repetitions:
  // docs/BENCHMARKS.md, "Memory phases"); the probe ones stay empty without a probe.
  std::vector<double> rep_prefill_tps, rep_decode_tps, rep_read_gbps, rep_fractions;
  uint64_t peak_rss = 0;                    // before any probe buffer exists
  std::vector<StreamRep> stream;            // streamed experts: per repetition
  std::optional<ParallelFigures> parallel;  // a parallel run (mpirun)
};

// The prompt of every run: fixed pseudo-random ids, the same every run.
std::vector<int32_t> bench_prompt(const v4::DeepSeekV4Config& c, int64_t n) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::mt19937 rng(1234);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
  return ids;
}

// Loads the model with `threads` workers and times o.reps sequences; with `probe_mib` > 0 a
// read-bandwidth pass of that many MiB follows every repetition.
Result<Timings> time_model(const BenchOptions& o, int threads, uint64_t probe_mib,
                           std::unique_ptr<engine::Engine>* keep = nullptr) {
  engine::EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = threads;
  FRUGAL_ASSIGN_OR_RETURN(eo.cache, engine::parse_cache_format(o.cache));
  eo.max_seq_len = o.prompt + o.gen + 10;  // + a speculative round of up to 8 drafts
  eo.load_tokenizer = false;
  eo.max_batch = o.batch;
  eo.weights_in_ram = o.weights_in_ram;
  eo.max_chunk = std::max<int64_t>({std::min(o.chunk, o.prompt), 9, o.batch});  // 9: a verify pass
                                                                                // of 8 drafts
  FRUGAL_RETURN_IF_ERROR(apply_engine_flags(o.engine, eo));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  const v4::DeepSeekV4Config& c = eng->config();
  stream::ExpertCache* experts = eng->expert_cache();
  // Under a memory budget the probe buffer counts too: it stays within the budget's overhead.
  if (experts != nullptr) probe_mib = std::min<uint64_t>(probe_mib, kStreamProbeMib);
  const double bytes_per_token = static_cast<double>(engine::decode_weight_bytes_per_token(c));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache, eng->new_cache());
  const std::vector<int32_t> ids = bench_prompt(c, o.prompt);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  std::vector<double> prefill_tps, decode_tps, read_gbps, fractions;
  std::optional<engine::ReadProbe> probe;
  Timings t;
  t.threads = eng->pool().n_threads();
  v4::Exchange* exchange = eng->exchange();
  if (exchange != nullptr) {
    t.parallel.emplace();
    t.parallel->shard = exchange->shard();
  }
  // The exchange's counters of one phase, added to `phase`, and reset.
  auto take_exchange = [&](ParallelPhase& phase, int64_t tokens, double seconds) {
    if (exchange == nullptr) return;
    phase.stats += parallel::exchange_stats(*exchange);
    phase.tokens += tokens;
    phase.seconds += seconds;
    parallel::reset_exchange_stats(*exchange);
  };
  for (int r = 0; r < std::max(o.reps, 1); ++r) {
    cache->clear();
    StreamRep rep;
    rep.gen = o.gen;
    if (experts != nullptr) experts->reset_stats();
    if (exchange != nullptr) parallel::reset_exchange_stats(*exchange);
    auto t0 = Clock::now();
    FRUGAL_RETURN_IF_ERROR(eng->model().forward(
        *cache, {.ids = ids, .logits_mode = v4::LogitsMode::kLast, .logits = logits}));
    const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
    prefill_tps.push_back(static_cast<double>(o.prompt) / prefill_s);
    if (t.parallel) take_exchange(t.parallel->prefill, o.prompt, prefill_s);
    if (experts != nullptr) {
      rep.prefill = experts->stats();
      experts->reset_stats();
    }
    std::mt19937 token_rng(4321);                         // the same stream every repetition
    if (experts != nullptr) experts->record_reads(true);  // the disk roofline's replay, below
    const stream::EmbedRows* rows = eng->embed_rows();
    const uint64_t rows_bytes0 = rows != nullptr ? rows->bytes_read() : 0;
    t0 = Clock::now();
    for (int64_t i = 0; i < o.gen; ++i) {
      const int32_t next[1] = {
          o.random_tokens ? static_cast<int32_t>(token_rng() % static_cast<uint32_t>(c.vocab_size))
                          : static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                                 logits.begin())};
      FRUGAL_RETURN_IF_ERROR(eng->model().forward(
          *cache, {.ids = next, .logits_mode = v4::LogitsMode::kLast, .logits = logits}));
    }
    if (o.gen > 0) {
      const double decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
      decode_tps.push_back(static_cast<double>(o.gen) / decode_s);
      if (t.parallel) take_exchange(t.parallel->decode, o.gen, decode_s);
    }
    if (experts != nullptr) {
      experts->record_reads(false);
      rep.decode = experts->stats();
      rep.embed_bytes = rows != nullptr ? rows->bytes_read() - rows_bytes0 : 0;
      rep.decode_tps = decode_tps.empty() ? 0.0 : decode_tps.back();
      // The disk probes' buffers take the RAM probe's place in the budget's overhead (and are
      // not the run's peak).
      if (t.peak_rss == 0) t.peak_rss = engine::peak_rss_bytes();
      probe.reset();
      FRUGAL_ASSIGN_OR_RETURN(const stream::ReadReplay replay, experts->replay_reads());
      rep.replay_gbps = replay.gbps();
      FRUGAL_ASSIGN_OR_RETURN(const engine::DiskProbeResult disk,
                              engine::measure_disk_bandwidth(o.model, {.passes = 1}));
      rep.disk_gbps = disk.gbps;
      t.stream.push_back(rep);
    }
    if (probe_mib == 0) continue;
    if (!probe) {
      if (t.peak_rss == 0) t.peak_rss = engine::peak_rss_bytes();
      FRUGAL_ASSIGN_OR_RETURN(probe, engine::ReadProbe::create(probe_mib << 20));
      probe->run(eng->kernels());  // warm-up
    }
    read_gbps.push_back(probe->run(eng->kernels()));
    if (experts != nullptr) t.stream.back().read_gbps = read_gbps.back();
    if (o.gen > 0)
      fractions.push_back(bytes_per_token * decode_tps.back() / 1e9 / read_gbps.back());
  }
  if (t.peak_rss == 0) t.peak_rss = engine::peak_rss_bytes();
  t.prefill_tps = engine::median(prefill_tps);
  t.decode_tps = decode_tps.empty() ? 0.0 : engine::median(decode_tps);
  t.read_gbps = read_gbps.empty() ? 0.0 : engine::median(read_gbps);
  t.roofline_fraction = fractions.empty() ? 0.0 : engine::median(fractions);
  t.rep_prefill_tps = prefill_tps;
  t.rep_decode_tps = decode_tps;
  t.rep_read_gbps = read_gbps;
  t.rep_fractions = fractions;
  if (keep != nullptr) *keep = std::move(eng);
  return t;
}

struct GemvCase {
  quant::WeightFormat format;
  int64_t rows, cols;  // V4-Flash shapes: attention / shared expert, routed expert, wo_a, hc
};
constexpr GemvCase kGemvCases[] = {
    {quant::WeightFormat::kFP8Block, 4096, 4096},
    {quant::WeightFormat::kMXFP4, 2048, 4096},
    {quant::WeightFormat::kBF16, 4096, 4096},
    {quant::WeightFormat::kF32, 4096, 4096},
};

Status run_bench(const BenchOptions& o) {
  if (o.prompt < 1) return invalid_argument("--prompt must be at least 1");
  FRUGAL_ASSIGN_OR_RETURN(const engine::SpecOptions spec_options, parse_spec(o.spec));
  const int32_t spec_k =
      spec_options.mode == engine::SpecMode::kOff ? 0 : spec_options.draft_tokens;
  std::unique_ptr<engine::Engine> eng;
  FRUGAL_ASSIGN_OR_RETURN(const Timings main, time_model(o, o.threads, o.bandwidth_mib, &eng));
  const v4::DeepSeekV4Config c = eng->config();
  const kernels::Kernels& k = eng->kernels();
  const std::string isa(kernels::isa_name(k.isa()));
  const bool amx = kernels::isa_supported(kernels::Isa::kAmx);

  const uint64_t bytes_per_token = engine::decode_weight_bytes_per_token(c);
  const uint64_t flops_per_token = engine::prefill_matmul_flops_per_token(c);
  const double bw = main.read_gbps;
  const double weight_gbps = static_cast<double>(bytes_per_token) * main.decode_tps / 1e9;
  const double fma_peak = engine::measure_fma_peak(k);
  // --act-quant runs the FP8/FP4 linears on bf16 dot products where the CPU has them: rate
  // prefill against that peak too.
  const double dot_peak = o.engine.act_quant ? engine::measure_bf16_dot_peak(k) : 0.0;
  const double prefill_gflops = static_cast<double>(flops_per_token) * main.prefill_tps / 1e9;

  // Per format: GEMV passes over the ring alternated with read-probe passes, median ratio.
  struct GemvFigure {
    GemvCase g;
    double gbps, fraction;
  };
  std::vector<GemvFigure> gemv;
  stream::ExpertCache* experts = eng->expert_cache();
  std::optional<StreamFigures> streamed;
  if (experts != nullptr) streamed = stream_figures(c, *experts, main.stream);
  // Streamed experts: the GEMV rings and the one-thread reload would not fit the budget.
  if (!o.no_kernels && experts == nullptr) {
    FRUGAL_ASSIGN_OR_RETURN(engine::ReadProbe probe,
                            engine::ReadProbe::create(o.bandwidth_mib << 20));
    for (const GemvCase& g : kGemvCases) {
      FRUGAL_ASSIGN_OR_RETURN(engine::GemvProbe ring,
                              engine::GemvProbe::create({.format = g.format,
                                                         .rows = g.rows,
                                                         .cols = g.cols,
                                                         .ring_bytes = o.bandwidth_mib << 20}));
      ring.run(k);  // warm-up
      std::vector<double> gbps, fractions;
      for (int r = 0; r < std::max(o.reps, 1); ++r) {
        const double read = probe.run(k);
        gbps.push_back(ring.run(k));
        fractions.push_back(gbps.back() / read);
      }
      gemv.push_back({g, engine::median(gbps), engine::median(fractions)});
    }
  }
  double batch_tps = 0;
  if (o.batch > 1) {
    FRUGAL_ASSIGN_OR_RETURN(
        batch_tps, time_batched_decode(*eng, bench_prompt(c, o.prompt), std::max<int64_t>(o.gen, 1),
                                       o.batch, o.reps));
  }
  std::optional<SpecBench> spec;
  if (spec_k > 0) {
    if (c.n_mtp_layers < 1) return invalid_argument("--spec: the model has no MTP block");
    FRUGAL_ASSIGN_OR_RETURN(spec, bench_speculation(*eng, bench_prompt(c, o.prompt),
                                                    std::max<int64_t>(o.gen, 1), spec_k, o.reps));
  }
  eng.reset();  // before the one-thread run loads the model again

  std::optional<Timings> one;
  // Not in a parallel run: whether a process streams is its own (its share, its budget), and the
  // reload is collective.
  if (!o.no_scaling && main.threads > 1 && !streamed && !main.parallel) {
    FRUGAL_ASSIGN_OR_RETURN(one, time_model(o, 1, 0));
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };

  if (o.json) {
    nlohmann::json j = {{"model", o.model},
                        {"isa", isa},
                        {"threads", main.threads},
                        {"cache", o.cache},
                        {"weights", streamed           ? "streamed_experts"
                                    : o.weights_in_ram ? "huge_pages"
                                                       : "mapped"},
                        {"prompt_tokens", o.prompt},
                        {"gen_tokens", o.gen},
                        {"decode_tokens", o.random_tokens ? "random" : "greedy"},
                        {"repetitions", std::max(o.reps, 1)},
                        {"prefill_tokens_per_s", main.prefill_tps},
                        {"decode_tokens_per_s", main.decode_tps},
                        {"decode_weight_bytes_per_token", bytes_per_token},
                        {"decode_weight_gbps", weight_gbps},
                        {"read_bandwidth_gbps", bw},
                        {"roofline_fraction", main.roofline_fraction},
                        {"prefill_matmul_flops_per_token", flops_per_token},
                        {"prefill_matmul_gflops", prefill_gflops},
                        {"fma_peak_gflops", fma_peak},
                        {"prefill_fraction_of_fma_peak", ratio(prefill_gflops, fma_peak)},
                        {"act_quant", o.engine.act_quant},
                        {"bf16_dot_peak_gflops", dot_peak},
                        {"prefill_fraction_of_bf16_dot_peak", ratio(prefill_gflops, dot_peak)},
                        {"amx_available", amx},
                        {"peak_rss_bytes", main.peak_rss},
                        {"per_repetition",
                         {{"prefill_tokens_per_s", main.rep_prefill_tps},
                          {"decode_tokens_per_s", main.rep_decode_tps},
                          {"read_bandwidth_gbps", main.rep_read_gbps},
                          {"roofline_fraction", main.rep_fractions}}}};
    if (one) {
      j["scaling"] = {
          {"threads_1",
           {{"prefill_tokens_per_s", one->prefill_tps}, {"decode_tokens_per_s", one->decode_tps}}},
          {"prefill_speedup", ratio(main.prefill_tps, one->prefill_tps)},
          {"decode_speedup", ratio(main.decode_tps, one->decode_tps)}};
    }
    if (o.batch > 1) {
      j["batch"] = {{"sequences", o.batch},
                    {"decode_tokens_per_s", batch_tps},
                    {"speedup_over_one_sequence", ratio(batch_tps, main.decode_tps)}};
    }
    if (spec) {
      nlohmann::json proj = nlohmann::json::array();
      for (double a : {0.6, 0.8, 0.9}) {
        for (int32_t d = 1; d <= spec->k; ++d)
          proj.push_back(
              {{"acceptance", a},
               {"k", d},
               {"speedup", engine::projected_spec_speedup(spec->measured, a, d)},
               {"speedup_by_bytes", engine::projected_spec_speedup(spec->by_bytes, a, d)}});
      }
      j["speculative"] = {{"k", spec->k},
                          {"plain_decode_tokens_per_s", spec->plain_tps},
                          {"spec_decode_tokens_per_s", spec->spec_tps},
                          {"speedup", ratio(spec->spec_tps, spec->plain_tps)},
                          {"drafted", spec->drafted},
                          {"accepted", spec->accepted},
                          {"acceptance", spec->acceptance()},
                          {"verify_cost", spec->measured.verify},
                          {"mtp_step_cost", spec->measured.mtp},
                          {"verify_cost_by_bytes", spec->by_bytes.verify},
                          {"mtp_step_cost_by_bytes", spec->by_bytes.mtp},
                          {"projected", proj}};
    }
    if (streamed) j["streamed_experts"] = stream_json(*streamed, main.decode_tps);
    if (main.parallel) j["parallel"] = parallel_json(c, *main.parallel);
    if (!gemv.empty()) {
      nlohmann::json g = nlohmann::json::array();
      for (const GemvFigure& f : gemv) {
        g.push_back({{"format", std::string(quant::weight_format_name(f.g.format))},
                     {"rows", f.g.rows},
                     {"cols", f.g.cols},
                     {"gbps", f.gbps},
                     {"fraction_of_read_bandwidth", f.fraction}});
      }
      j["gemv"] = g;
    }
    return write_output(j.dump() + "\n");
  }
  std::string out;
  char buf[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof(buf), fmt, args...);
    out += buf;
  };
  add("model %s, %s kernels, %d threads, %s cache, weights %s, medians of %d runs\n",
      o.model.c_str(), isa.c_str(), main.threads, o.cache.c_str(),
      streamed           ? "resident + streamed experts"
      : o.weights_in_ram ? "in huge pages"
                         : "mapped",
      std::max(o.reps, 1));
  add("prefill %lld tokens: %.1f tok/s = %.1f GFLOP/s of matmuls (%.3g GFLOP/token); f32 FMA "
      "peak (same run) %.1f GFLOP/s: %.1f %%%s\n",
      static_cast<long long>(o.prompt), main.prefill_tps, prefill_gflops,
      static_cast<double>(flops_per_token) / 1e9, fma_peak, 100.0 * ratio(prefill_gflops, fma_peak),
      amx ? "" : " (no AMX on this CPU)");
  if (dot_peak > 0.0) {
    add("--act-quant: bf16 dot-product peak (same run) %.1f GFLOP/s: prefill %.1f %% of it\n",
        dot_peak, 100.0 * ratio(prefill_gflops, dot_peak));
  }
  add("decode %lld tokens: %.2f tok/s\n", static_cast<long long>(o.gen), main.decode_tps);
  add("weights read per decode token: %s -> %.2f GB/s\n",
      engine::format_bytes(bytes_per_token).c_str(), weight_gbps);
  add("read bandwidth (after each decode run): %.2f GB/s; roofline fraction %.1f %%\n", bw,
      100.0 * main.roofline_fraction);
  if (main.rep_fractions.size() > 1) {
    std::string reps;
    for (size_t i = 0; i < main.rep_fractions.size(); ++i) {
      char one_rep[96];
      std::snprintf(one_rep, sizeof(one_rep), "%s%.2f tok/s at %.1f GB/s (%.1f %%)",
                    i == 0 ? "" : ", ", main.rep_decode_tps[i], main.rep_read_gbps[i],
                    100.0 * main.rep_fractions[i]);
      reps += one_rep;
    }
    out += "  per repetition: " + reps + "\n";
  }
  if (one) {
    add("1 thread: prefill %.1f tok/s, decode %.2f tok/s; %d threads are %.2fx / %.2fx faster\n",
        one->prefill_tps, one->decode_tps, main.threads, ratio(main.prefill_tps, one->prefill_tps),
        ratio(main.decode_tps, one->decode_tps));
  }
  for (const GemvFigure& f : gemv) {
    add("GEMV %s [%lld x %lld]: %.2f GB/s = %.1f %% of the read bandwidth\n",
        std::string(quant::weight_format_name(f.g.format)).c_str(),
        static_cast<long long>(f.g.rows), static_cast<long long>(f.g.cols), f.gbps,
        100.0 * f.fraction);
  }
  if (o.batch > 1) {
    add("batch of %lld sequences (one forward per step): %.2f tok/s in all = %.2fx one sequence\n",
        static_cast<long long>(o.batch), batch_tps, ratio(batch_tps, main.decode_tps));
  }
  if (spec) {
    add("speculative k=%d (greedy, same run): %.2f tok/s vs plain %.2f tok/s = %.2fx; %lld of %lld "
        "drafts accepted (%.2f)\n",
        spec->k, spec->spec_tps, spec->plain_tps, ratio(spec->spec_tps, spec->plain_tps),
        static_cast<long long>(spec->accepted), static_cast<long long>(spec->drafted),
        spec->acceptance());
    out += spec_cost_text(*spec);
  }
  if (streamed) out += stream_text(*streamed, main.decode_tps);
  if (main.parallel) out += parallel_text(c, *main.parallel);
  add("peak rss %s\n", engine::format_bytes(main.peak_rss).c_str());
  return write_output(out);
}

}  // namespace

Command add_bench(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "bench", "Prefill and decode speed against the bandwidth and FMA peak measured in the run");
  add_model_option(sub, &o->model);
  sub->add_option("--prompt", o->prompt, "Prompt tokens to prefill")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--gen", o->gen, "Decode steps")->capture_default_str()->check(at_least(0));
  sub->add_option("--reps", o->reps, "Repetitions (medians are reported)")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_flag("--json", o->json, "One JSON object");
  sub->add_option("-t,--threads", o->threads, "Worker threads (0 = one per CPU)")
      ->check(at_least(0));
  sub->add_option("--cache", o->cache, "KV cache format: fp8, bf16 or f32")->capture_default_str();
  sub->add_flag("--weights-in-ram", o->weights_in_ram,
                "Copy the weights into huge-page memory at load (as frugal run --weights-in-ram)");
  sub->add_option("--chunk", o->chunk,
                  "Prefill tokens per forward chunk (routed experts are read once per chunk)")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_flag("--no-scaling", o->no_scaling, "Skip the one-thread run");
  sub->add_option("--batch", o->batch,
                  "Also decode N sequences together (one forward per step for all): aggregate "
                  "tokens/s against one sequence")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--spec", o->spec,
                  "Also measure speculative decoding with the MTP block: off, auto (= 1) or K "
                  "drafts per round: speedup over plain decoding, acceptance, verify costs")
      ->capture_default_str();
  sub->add_flag("--no-kernels", o->no_kernels, "Skip the per-format GEMV measurements");
  add_engine_flags(sub, &o->engine);
  sub->add_flag("--random-tokens", o->random_tokens,
                "Decode steps feed a fixed pseudo-random token stream instead of the greedy "
                "choice: a random-weight model's greedy output repeats one token, whose routing "
                "then never changes (with streamed experts that measures an ideal cache)");
  sub->add_option("--bandwidth-mib", o->bandwidth_mib,
                  "Working set of the bandwidth and GEMV probes, MiB (must exceed the LLC)")
      ->capture_default_str()
      ->check(at_least(1));
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace frugal::cli

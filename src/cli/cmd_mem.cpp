// frugal mem -m DIR --ctx N [--chunk C] [--json] [--config-only]: the memory plan of the model for
// a context of N tokens (engine/memory_plan.h): weights by dtype and kind, kv cache per token and
// in total for each cache format, fixed per-sequence state, activation arena (the model is loaded,
// which maps the weights without reading them, to size its arena for N positions), and the same
// context under a V3.2-style MLA cache and plain MHA.
//
// With --budget SIZE (--mem-budget): the budget plan instead (engine/budget.h, docs/STREAMING.md):
// what is resident, the arena, the kv cache, how many expert slots fit, the minimum budget, and a
// predicted decode tok/s from a hit rate (uniform, or --expert-profile) and the RAM and disk read
// bandwidths. The model is not loaded (that would map, and today read, all of it): the arena is
// computed from the config exactly as Model::create sizes it. Bandwidths: --ram-gbps /
// --disk-gbps when given; otherwise measured (the read probe; the O_DIRECT probe of the model's
// own files) with --measure or when a checkpoint is there and --config-only is not given;
// otherwise the defaults kDefaultRamGbps / kDefaultDiskGbps. The output names each source.
//
// With --ranks N [--pipeline-stages S]: what each process of a parallel run holds instead
// (cli/mem_ranks.h, engine/rank_plan.h, docs/PARALLEL.md): its shard, weights by group, kv cache
// at --ctx (--cache), from the config alone (nothing is loaded, with or without --config-only).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/command.h"
#include "cli/mem_ranks.h"
#include "engine/budget.h"
#include "engine/disk_probe.h"
#include "engine/engine.h"
#include "engine/memory_plan.h"
#include "engine/probes.h"
#include "model/v4/config.h"

namespace frugal::cli {
namespace {

// Without a measurement or a flag: a two-channel DDR4/DDR5 desktop's achieved read bandwidth,
// and the large random reads of a PCIe 3 NVMe SSD. docs/STREAMING.md.
constexpr double kDefaultRamGbps = 25.0;
constexpr double kDefaultDiskGbps = 2.0;

struct MemOptions {
  std::string model;
  int64_t ctx = 4096;
  int64_t chunk = engine::EngineOptions{}.max_chunk;  // as run / chat
  bool json = false;
  bool config_only = false;
  bool weights_in_ram = false;
  // budget plan
  std::string budget;  // "" = no budget plan; "auto" = memory_available_for_budget()
  std::string cache = "fp8";
  int64_t sequences = 1;
  bool with_mtp = false;
  std::string expert_profile;
  bool measure = false;
  double ram_gbps = 0;  // 0 = not given
  double disk_gbps = 0;
  // per-rank plan
  int32_t ranks = 0;  // 0 = not given
  int32_t stages = 1;
};

struct Bandwidth {
  double gbps = 0;
  std::string source;
};

struct DiskFigure {
  Bandwidth bw;
  std::optional<engine::DiskProbeResult> probe;
};

// The checkpoint -m names: the folder or .safetensors file itself, or the folder of config.json.
std::string checkpoint_path(const std::string& model) {
  std::error_code ec;
  const std::filesystem::path m(model);
  if (!std::filesystem::is_regular_file(m, ec) || m.extension() == ".safetensors") return model;
  return m.has_parent_path() ? m.parent_path().string() : ".";
}

// Measure unless a figure is given, or neither --measure nor a checkpoint asks for it.
bool should_measure(const MemOptions& o) {
  return o.measure || (!o.config_only && engine::checkpoint_files(checkpoint_path(o.model)).ok());
}

// The read probe on a pool of every CPU (as frugal bench runs it).
Result<Bandwidth> ram_bandwidth(const MemOptions& o) {
  if (o.ram_gbps > 0) return Bandwidth{o.ram_gbps, "given (--ram-gbps)"};
  if (!should_measure(o)) {
    return Bandwidth{kDefaultRamGbps, "default; --ram-gbps or --measure to change"};
  }
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool, ThreadPool::create({}));
  FRUGAL_ASSIGN_OR_RETURN(kernels::Kernels k, kernels::Kernels::create({.pool = pool.get()}));
  FRUGAL_ASSIGN_OR_RETURN(double gbps, engine::measure_read_bandwidth(k));
  return Bandwidth{gbps, "measured: read probe, " + std::to_string(pool->n_threads()) + " threads"};
}

Result<DiskFigure> disk_bandwidth(const MemOptions& o) {
  if (o.disk_gbps > 0) return DiskFigure{{o.disk_gbps, "given (--disk-gbps)"}, std::nullopt};
  if (!should_measure(o)) {
    return DiskFigure{{kDefaultDiskGbps, "default; --disk-gbps or --measure to change"},
                      std::nullopt};
  }
  Result<engine::DiskProbeResult> r = engine::measure_disk_bandwidth(checkpoint_path(o.model));
  if (!r.ok()) {
    return r.status().with_context(
        "measuring the disk (the probe reads the model's safetensors files; or give --disk-gbps)");
  }
  const engine::DiskProbeResult& p = *r;
  const std::string how = p.direct ? "O_DIRECT" : "buffered (" + p.fallback_reason + ")";
  return DiskFigure{
      {p.gbps, "measured: " + how + " reads of 1-16 MiB across " + std::to_string(p.files) +
                   " file(s), " + std::to_string(p.threads) + " in flight"},
      p};
}

std::string pct(double f) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f %%", 100.0 * f);
  return b;
}

std::string budget_text(const engine::BudgetPlan& p, const nlohmann::json& j) {
  using engine::format_bytes;
  std::string out;
  auto add = [&out](const char* fmt, auto... args) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), fmt, args...);
    out += buf;
  };
  add("budget plan: %s (%s)\n", format_bytes(p.budget).c_str(),
      j["budget_source"].get<std::string>().c_str());
  add("  resident weights   %12s  copied into huge pages at load%s\n",
      format_bytes(p.resident_weight_bytes).c_str(), p.with_mtp ? " (MTP included)" : "");
  for (const auto& [kind, bytes] : p.resident_by_kind) {
    add("    %-18s %12s\n", kind.c_str(), format_bytes(bytes).c_str());
  }
  if (p.streamed_embed_bytes > 0) {
    add("  embedding          %12s  on disk, not resident: one row read per token\n",
        format_bytes(p.streamed_embed_bytes).c_str());
  }
  add("  activation arena   %12s  (%s)\n", format_bytes(p.activation_bytes).c_str(),
      j["activation_source"].get<std::string>().c_str());
  add("  kv cache           %12s  (%s, %lld tokens x %lld sequence(s))\n",
      format_bytes(p.kv_bytes).c_str(), j["kv_format"].get<std::string>().c_str(),
      static_cast<long long>(j["ctx"].get<int64_t>()),
      static_cast<long long>(j["sequences"].get<int64_t>()));
  add("  overhead           %12s  (tokenizer, tables, stacks, allocator slack)\n",
      format_bytes(p.overhead_bytes).c_str());
  add("  expert slots       %12s  %lld slots of %s: %lld of %lld routed experts (%s)%s\n",
      format_bytes(p.slots_bytes()).c_str(), static_cast<long long>(p.slots),
      format_bytes(p.slot_bytes).c_str(), static_cast<long long>(p.slots),
      static_cast<long long>(p.streamed_experts),
      pct(static_cast<double>(p.slots) / static_cast<double>(p.streamed_experts)).c_str(),
      p.all_experts_fit() ? ", all fit: nothing streams after the first reads" : "");
  add("  total              %12s  of the budget\n", format_bytes(p.used_bytes()).c_str());
  add("  min budget         %12s  (%lld slots: %lld x the experts of one token and layer)\n",
      format_bytes(p.min_budget).c_str(), static_cast<long long>(p.min_slots),
      static_cast<long long>(engine::kMinSlotsPerToken));
  const nlohmann::json& d = j["prediction"];
  add("decode prediction:\n");
  add("  hit rate           %12s  (%s)\n", pct(j["hit_rate"].get<double>()).c_str(),
      j["hit_rate_source"].get<std::string>().c_str());
  add("  RAM  %8.2f GB/s  %7.3f GB/token  (%s)\n", j["ram_gbps"].get<double>(),
      d["ram_bytes_per_token"].get<double>() / 1e9,
      j["ram_gbps_source"].get<std::string>().c_str());
  add("  disk %8.2f GB/s  %7.3f GB/token  (%s)\n", j["disk_gbps"].get<double>(),
      d["disk_bytes_per_token"].get<double>() / 1e9,
      j["disk_gbps_source"].get<std::string>().c_str());
  add("  predicted decode   %.2f tok/s with reads and compute in turn, %.2f tok/s with the "
      "expert reads entirely behind the compute\n",
      d["tok_s"].get<double>(), d["overlapped_tok_s"].get<double>());
  return out;
}

Status run_budget(const MemOptions& o, const v4::DeepSeekV4Config& config) {
  nlohmann::json j;
  uint64_t budget = 0;
  if (o.budget == "auto") {
    const engine::MemoryAvailability m = engine::probe_memory_availability();
    budget = m.available();
    if (budget == 0) return invalid_argument("--budget auto: the available memory is unknown");
    j["budget_source"] = m.cgroup_version != 0
                             ? "auto: MemAvailable and the cgroup v" +
                                   std::to_string(m.cgroup_version) + " limit of " + m.cgroup_dir
                             : std::string("auto: MemAvailable");
  } else {
    FRUGAL_ASSIGN_OR_RETURN(budget, engine::parse_size(o.budget, "--budget"));
    j["budget_source"] = "--budget";
  }
  FRUGAL_ASSIGN_OR_RETURN(kv::CacheFormat format, engine::parse_cache_format(o.cache));
  const uint64_t activation = engine::activation_bytes_for(config, o.chunk, o.ctx);
  j["activation_source"] = "as the model sizes it for --ctx " + std::to_string(o.ctx) +
                           ", --chunk " + std::to_string(o.chunk);
  const uint64_t kv =
      engine::kv_bytes_at(config, format, o.ctx).total() * static_cast<uint64_t>(o.sequences);
  FRUGAL_ASSIGN_OR_RETURN(engine::BudgetPlan p,
                          engine::plan_budget(config, budget, activation, kv, o.with_mtp));

  double hit = engine::uniform_hit_rate(p.slots, p.streamed_experts);
  j["hit_rate_source"] = "uniform: slots / routed experts";
  if (!o.expert_profile.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(engine::ExpertProfile prof,
                            engine::load_expert_profile(o.expert_profile));
    FRUGAL_RETURN_IF_ERROR(engine::check_expert_profile(prof, config, o.expert_profile));
    if (!o.with_mtp) prof.resize(static_cast<size_t>(config.n_layers));
    hit = engine::profile_hit_rate(prof, p.slots);
    j["hit_rate_source"] = "profile " + o.expert_profile + ": its " + std::to_string(p.slots) +
                           " hottest experts pinned";
    j["profile"] = o.expert_profile;
  }
  FRUGAL_ASSIGN_OR_RETURN(Bandwidth ram, ram_bandwidth(o));
  FRUGAL_ASSIGN_OR_RETURN(DiskFigure disk, disk_bandwidth(o));
  const engine::DecodePrediction d = engine::predict_decode(config, hit, ram.gbps, disk.bw.gbps);

  j["budget"] = p.budget;
  j["resident_weight_bytes"] = p.resident_weight_bytes;
  j["resident_by_kind"] = p.resident_by_kind;
  j["streamed_embed_bytes"] = p.streamed_embed_bytes;
  j["activation_bytes"] = p.activation_bytes;
  j["kv_bytes"] = p.kv_bytes;
  j["kv_format"] = o.cache;
  j["ctx"] = o.ctx;
  j["sequences"] = o.sequences;
  j["overhead_bytes"] = p.overhead_bytes;
  j["slot_bytes"] = p.slot_bytes;
  j["slots"] = p.slots;
  j["slots_bytes"] = p.slots_bytes();
  j["streamed_experts"] = p.streamed_experts;
  j["all_experts_fit"] = p.all_experts_fit();
  j["used_bytes"] = p.used_bytes();
  j["min_budget"] = p.min_budget;
  j["min_slots"] = p.min_slots;
  j["with_mtp"] = p.with_mtp;
  j["hit_rate"] = hit;
  j["ram_gbps"] = ram.gbps;
  j["ram_gbps_source"] = ram.source;
  j["disk_gbps"] = disk.bw.gbps;
  j["disk_gbps_source"] = disk.bw.source;
  if (disk.probe) {
    j["disk_probe"] = {
        {"direct", disk.probe->direct},       {"fallback_reason", disk.probe->fallback_reason},
        {"pass_gbps", disk.probe->pass_gbps}, {"bytes_read", disk.probe->bytes_read},
        {"files", disk.probe->files},         {"threads", disk.probe->threads}};
  }
  j["prediction"] = {{"ram_bytes_per_token", d.ram_bytes_per_token},
                     {"disk_bytes_per_token", d.disk_bytes_per_token},
                     {"tok_s", d.tok_s},
                     {"overlapped_tok_s", d.overlapped_tok_s}};
  return write_output(o.json ? j.dump() + "\n" : budget_text(p, j));
}

Status run_mem(const MemOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(v4::DeepSeekV4Config config, v4::load_config(o.model));
  if (!o.budget.empty()) return run_budget(o, config);
  if (o.ranks > 0) {
    return run_mem_ranks(
        {.ranks = o.ranks, .stages = o.stages, .ctx = o.ctx, .cache = o.cache, .json = o.json},
        config);
  }
  engine::MemoryPlan plan = engine::plan_memory(config, o.ctx);
  if (!o.config_only) {
    engine::EngineOptions eo;
    eo.model_dir = o.model;
    eo.threads = 1;
    eo.max_seq_len = o.ctx;
    eo.max_chunk = o.chunk;
    eo.scan_values = false;
    eo.load_tokenizer = false;
    eo.weights_in_ram = o.weights_in_ram;
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
    plan.activation_bytes = eng->model().scratch_bytes();
    plan.load_copy_bytes = eng->model().weights().owned_stats.bytes();
    plan.placed_weight_bytes = eng->model().weights().placed_stats.bytes();
  }
  return write_output(o.json ? engine::memory_plan_json(plan) + "\n"
                             : engine::memory_plan_text(plan));
}

}  // namespace

Command add_mem(CLI::App& root) {
  auto o = std::make_shared<MemOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "mem", "Memory plan: weights, kv cache per format, fixed state, activations; vs MLA and MHA");
  add_model_option(sub, &o->model);
  sub->add_option("--ctx", o->ctx, "Context length in tokens")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--chunk", o->chunk,
                  "Prefill tokens per forward chunk, as in run / chat (sizes the activation arena)")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_flag("--json", o->json, "One JSON object");
  sub->add_flag("--config-only", o->config_only,
                "Plan from config.json alone (no checkpoint; activation arena not reported "
                "without --budget; with --budget: no measurement unless --measure)");
  sub->add_flag("--weights-in-ram", o->weights_in_ram,
                "Load as frugal run --weights-in-ram does, so the copied bytes are counted");
  CLI::Option* budget = sub->add_option(
      "--budget,--mem-budget", o->budget,
      "Plan for a memory budget (8G, 512M, 1.5GiB, bytes, or 'auto': the memory "
      "available to this process): resident weights, expert slots, predicted decode "
      "tok/s (docs/STREAMING.md)");
  CLI::Option* cache = sub->add_option("--cache", o->cache,
                                       "Budget and rank plans: kv cache format (fp8, bf16, f32)")
                           ->capture_default_str();
  sub->add_option("--sequences", o->sequences, "Budget plan: sequences whose kv cache is held")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_flag("--mtp", o->with_mtp,
                "Budget plan: the MTP block is used (speculative decoding): resident, its experts "
                "streamed");
  sub->add_option("--expert-profile", o->expert_profile,
                  "Budget plan: hit rate from an expert profile (frugal profile; format in "
                  "engine/budget.h) with its hottest experts pinned, instead of uniform routing");
  sub->add_flag("--measure", o->measure,
                "Budget plan: measure the RAM read bandwidth and the disk (O_DIRECT reads of the "
                "model's files) even with --config-only");
  sub->add_option("--ram-gbps", o->ram_gbps, "Budget plan: RAM read bandwidth in GB/s")
      ->check(at_least(0.001));
  sub->add_option("--disk-gbps", o->disk_gbps, "Budget plan: disk read bandwidth in GB/s")
      ->check(at_least(0.001));
  CLI::Option* ranks =
      sub->add_option("--ranks", o->ranks,
                      "What each of N processes of a parallel run holds (docs/PARALLEL.md): "
                      "shard, weights by group, kv cache at --ctx")
          ->check(at_least(1))
          ->excludes(budget);
  sub->add_option("--pipeline-stages", o->stages,
                  "With --ranks: pipeline stages (dividing N); the N/S processes of a stage "
                  "split its routed experts")
      ->capture_default_str()
      ->needs(ranks);
  for (const char* name :
       {"--sequences", "--mtp", "--expert-profile", "--measure", "--ram-gbps", "--disk-gbps"}) {
    sub->get_option(name)->needs(budget);
  }
  sub->get_option("--weights-in-ram")->excludes(budget);  // a budget plan loads nothing
  sub->get_option("--weights-in-ram")->excludes(ranks);   // nor does a rank plan
  return {sub, [o, cache, budget, ranks] {
            if (cache->count() > 0 && budget->count() == 0 && ranks->count() == 0) {
              return invalid_argument("--cache requires --budget or --ranks");
            }
            return run_mem(*o);
          }};
}

}  // namespace frugal::cli

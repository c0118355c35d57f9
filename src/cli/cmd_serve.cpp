// frugal serve -m DIR [--host H] [--port P] [--parallel N] ...: the OpenAI-compatible server
// (serve/server.h) over the continuous-batching scheduler (serve/scheduler.h).
//
// Start-up prints the plan on stderr (sequences, context, kv budget, prefix cache) and, once the
// socket accepts, exactly one line "frugal serve: listening on http://HOST:PORT" (with --port 0
// the port is the free one the system chose: tests read it from there). SIGTERM or SIGINT drains:
// requests in flight run to their end and are written, new ones get 503, then the process exits 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "engine/memory_plan.h"
#include "parallel/world.h"
#include "serve/scheduler.h"
#include "serve/server.h"

namespace frugal::cli {
namespace {

struct ServeOptions {
  std::string model;
  std::string model_id;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t parallel = 8;
  int32_t queue = 64;
  int64_t ctx = 4096;
  int64_t chunk = 0;          // engine chunk (tokens per step); 0 = max(64, 2 x parallel)
  int64_t prefill_chunk = 0;  // one sequence's prompt tokens per step; 0 = the chunk
  std::string kv_budget = "auto";
  std::string prefix_cache = "512MiB";
  std::string max_body = "8MiB";
  int64_t default_max_tokens = 0;
  int threads = 0;
  std::string cache = "fp8";
  bool weights_in_ram = false;
  EngineFlags engine;
};

// "512MiB", "4G", "1.5GiB", "65536" (bytes); K/M/G/T are powers of 1024 with or without "iB".
Result<uint64_t> parse_size(const std::string& flag, const std::string& text) {
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (unit.size() >= 2 && (unit.ends_with("iB") || unit.ends_with("ib")))
    unit.resize(unit.size() - 2);
  else if (unit.size() == 2 && (unit[1] == 'B' || unit[1] == 'b'))
    unit.resize(1);
  double mul = 1;
  if (unit == "K" || unit == "k")
    mul = 1024.0;
  else if (unit == "M" || unit == "m")
    mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "g")
    mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t")
    mul = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "B")
    used = 0;
  if (used == 0 || !(v >= 0) || v * mul > 1.8e19) {
    return invalid_argument(flag + ": expected a size such as 512MiB, 4G or 65536, got '" + text +
                            "'");
  }
  return static_cast<uint64_t>(v * mul);
}

Status run_serve(const ServeOptions& o) {
  // SIGTERM / SIGINT are taken by a thread of their own (sigwait), so they are blocked in every
  // thread started from here on.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that left is seen as a failed write

  if (o.parallel < 1) return invalid_argument("--parallel: must be at least 1");
  FRUGAL_ASSIGN_OR_RETURN(uint64_t prefix_bytes, parse_size("--prefix-cache", o.prefix_cache));
  FRUGAL_ASSIGN_OR_RETURN(uint64_t max_body, parse_size("--max-body", o.max_body));
  engine::EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = o.threads;
  eo.weights_in_ram = o.weights_in_ram;
  eo.max_seq_len = o.ctx;
  eo.max_batch = o.parallel;
  eo.max_chunk = o.chunk > 0 ? o.chunk : std::max<int64_t>(64, 2 * o.parallel);
  FRUGAL_ASSIGN_OR_RETURN(eo.cache, engine::parse_cache_format(o.cache));
  FRUGAL_RETURN_IF_ERROR(apply_engine_flags(o.engine, eo));
  eo.reserve_bytes = prefix_bytes;  // the prefix snapshots count under a memory budget
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  // A parallel run (docs/PARALLEL.md): rank 0 serves, and hands its steps to the others, which
  // repeat them until it stops (the mirror's destructor says so on every way out of here).
  if (parallel::world_rank() != 0) return serve::run_worker(*eng);
  std::unique_ptr<serve::StepMirror> mirror;
  if (parallel::world_size() > 1) mirror = std::make_unique<serve::StepMirror>();

  uint64_t kv_budget = 0;
  if (o.kv_budget == "auto" && eng->expert_cache() != nullptr) {
    // Streamed experts: the memory budget reserved --parallel sequences at --ctx for the cache.
    kv_budget = engine::kv_bytes_at(eng->config(), eo.cache, o.ctx).total() *
                static_cast<uint64_t>(o.parallel);
  } else if (o.kv_budget == "auto") {  // half of what is left once the weights are in
    kv_budget = engine::mem_available_bytes() / 2;
  } else {
    FRUGAL_ASSIGN_OR_RETURN(kv_budget, parse_size("--kv-budget", o.kv_budget));
  }
  const uint64_t one_full =
      engine::kv_bytes_at(eng->config(), eo.cache, o.ctx).total();  // a sequence at --ctx
  serve::SchedulerOptions so{.max_parallel = o.parallel,
                             .max_queue = o.queue,
                             .prefill_chunk = o.prefill_chunk,
                             .kv_budget = kv_budget,
                             .prefix_cache_bytes = prefix_bytes,
                             .mirror = mirror.get()};
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<serve::Scheduler> sched,
                          serve::Scheduler::create(*eng, so));
  std::string id = o.model_id;
  if (id.empty()) id = std::filesystem::path(o.model).lexically_normal().filename().string();
  if (id.empty()) id = std::filesystem::path(o.model).lexically_normal().parent_path().filename();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<serve::Server> server,
                          serve::Server::create(*eng, *sched,
                                                {.host = o.host,
                                                 .port = o.port,
                                                 .model_id = id,
                                                 .max_body_bytes = max_body,
                                                 .default_max_tokens = o.default_max_tokens}));
  std::fprintf(stderr,
               "frugal serve: model '%s' (%s), %d sequences at once, %d queued, context %lld, "
               "%lld tokens per step; kv budget %s (%s per sequence at full context), prefix "
               "cache %s; loaded in %.1f s\n",
               id.c_str(), o.model.c_str(), o.parallel, o.queue, static_cast<long long>(o.ctx),
               static_cast<long long>(eo.max_chunk),
               kv_budget > 0 ? engine::format_bytes(kv_budget).c_str() : "unbounded",
               engine::format_bytes(one_full).c_str(),
               prefix_bytes > 0 ? engine::format_bytes(prefix_bytes).c_str() : "off",
               eng->load_seconds());

  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == SIGTERM || sig == SIGINT) {
      std::fprintf(stderr, "frugal serve: %s: finishing the requests in flight\n",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      server->shutdown();
    }
  });
  const Status st = server->listen([&](int port) {
    std::fprintf(stderr, "frugal serve: listening on http://%s:%d\n", o.host.c_str(), port);
    std::fflush(stderr);
  });
  if (!st.ok()) {  // the listener never ran: release the signal thread
    pthread_kill(signals.native_handle(), SIGTERM);
  }
  signals.join();
  if (st.ok()) std::fprintf(stderr, "frugal serve: stopped\n");
  return st;
}

}  // namespace

Command add_serve(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = root.add_subcommand(
      "serve", "OpenAI-compatible HTTP server with continuous batching and prefix reuse");
  o->model = default_model_dir();
  add_model_option(sub, &o->model);
  sub->add_option("--model-id", o->model_id,
                  "The id clients name in \"model\" (default: the model directory's name)");
  sub->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", o->port, "Port (0 = a free port, printed at start)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  sub->add_option("--parallel", o->parallel, "Sequences decoded together at most")
      ->capture_default_str()
      ->check(at_least(1));
  sub->add_option("--queue", o->queue, "Requests waiting beyond those (more get 429)")
      ->capture_default_str()
      ->check(at_least(0));
  sub->add_option("-c,--ctx", o->ctx, "Context length of each sequence")
      ->capture_default_str()
      ->check(at_least(2));
  sub->add_option("--chunk", o->chunk,
                  "Tokens per forward step, all sequences together (0 = max(64, 2 x parallel))")
      ->check(at_least(0));
  sub->add_option("--prefill-chunk", o->prefill_chunk,
                  "Prompt tokens of one sequence per step (0 = the whole step)")
      ->check(at_least(0));
  sub->add_option("--kv-budget", o->kv_budget,
                  "KV cache the sequences in flight may grow to (auto = half the available "
                  "memory after load; 0 = unbounded)")
      ->capture_default_str();
  sub->add_option("--prefix-cache", o->prefix_cache,
                  "Memory for prefix snapshots (0 = no prefix reuse)")
      ->capture_default_str();
  sub->add_option("--max-body", o->max_body, "Largest request body (larger: 413)")
      ->capture_default_str();
  sub->add_option("--default-max-tokens", o->default_max_tokens,
                  "max_tokens when a request gives none (0 = up to the context end)")
      ->check(at_least(0));
  sub->add_option("-t,--threads", o->threads, "Worker threads (0 = one per CPU)")
      ->check(at_least(0));
  sub->add_option("--cache", o->cache, "KV cache format: fp8, bf16 or f32")->capture_default_str();
  sub->add_flag("--weights-in-ram", o->weights_in_ram,
                "Copy the weights into huge-page memory at load (faster decode)");
  add_engine_flags(sub, &o->engine);
  return {sub, [o] { return run_serve(*o); }};
}

}  // namespace frugal::cli

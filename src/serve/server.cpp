#include "serve/server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "serve/api_response.h"

namespace frugal::serve {
namespace {

// The chat page (src/serve/chat_page.html), compiled in as kChatPage.
#include "chat_page.inc"

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Server::Server(engine::Engine& engine, Scheduler& scheduler, ServerOptions options)
    : engine_(engine),
      scheduler_(scheduler),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()),
      started_(steady_seconds()) {
  model_.id = options_.model_id;
  model_.context_length = scheduler.max_seq_len();
  model_.vocab_size = static_cast<int32_t>(engine.config().vocab_size);
  model_.max_n = std::max(1, scheduler.options().max_parallel);
}

Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::create(engine::Engine& engine, Scheduler& scheduler,
                                               ServerOptions options) {
  if (options.model_id.empty()) return invalid_argument("serve: the model needs an id");
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("--port " + std::to_string(options.port) + ": expected 0..65535");
  }
  if (options.max_body_bytes < 1024) return invalid_argument("serve: max body under 1 KiB");
  if (options.default_max_tokens < 0) return invalid_argument("serve: default max tokens < 0");
  if (options.quick_answer_ms < 0) return invalid_argument("serve: quick_answer_ms < 0");
  if (options.keepalive_ms < 1) return invalid_argument("serve: keepalive_ms < 1");
  std::unique_ptr<Server> s(new Server(engine, scheduler, std::move(options)));
  s->routes();
  return s;
}

void Server::count(const char* endpoint, int status) {
  std::lock_guard<std::mutex> lock(counters_.mu);
  ++counters_.requests[std::string(endpoint) + " " + std::to_string(status)];
}

void Server::reply_error(httplib::Response& res, const ApiError& e, const char* endpoint) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
  count(endpoint, e.status);
}

bool Server::refused_while_draining(httplib::Response& res, const char* endpoint) {
  if (admitting()) return false;
  reply_error(res,
              {.status = 503,
               .message = "the server is shutting down",
               .type = "server_error",
               .code = "shutting_down"},
              endpoint);
  return true;
}

void Server::routes() {
  httplib::Server& h = *http_;
  const int threads = options_.http_threads > 0
                          ? options_.http_threads
                          : scheduler_.options().max_parallel + scheduler_.options().max_queue + 8;
  h.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_read_timeout(30, 0);
  h.set_write_timeout(30, 0);
  // Errors httplib answers itself (unknown route, oversized body, unreadable request) get the
  // OpenAI error object too.
  h.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.message = "no route " + req.method + " " + req.path +
                  " (routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, "
                  "GET /health, GET /metrics, GET /)";
      e.code = "not_found";
    } else if (res.status == 413) {
      e.message = "request body: larger than the server's limit of " +
                  std::to_string(options_.max_body_bytes) + " bytes";
      e.code = "payload_too_large";
    } else {
      e.message = "the request could not be read (HTTP " + std::to_string(res.status) + ")";
    }
    res.set_content(error_body(e), "application/json");
    count("other", res.status);
  });
  h.set_exception_handler(
      [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        ApiError e{.status = 500, .type = "server_error"};
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& x) {
          e.message = std::string("internal error: ") + x.what();
        } catch (...) {
          e.message = "internal error";
        }
        res.status = 500;
        res.set_content(error_body(e), "application/json");
        count("other", 500);
      });

  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (!admitting()) {
      res.status = 503;
      res.set_content(R"({"status":"draining"})", "application/json");
    } else {
      res.set_content(R"({"status":"ok"})", "application/json");
    }
    count("health", res.status);
  });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_body(model_, static_cast<int64_t>(std::time(nullptr))),
                    "application/json");
    count("models", 200);
  });
  h.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (id != model_.id) {
      return reply_error(res,
                         {.status = 404,
                          .message = "The model '" + id + "' does not exist; this server serves '" +
                                     model_.id + "'",
                          .param = "model",
                          .code = "model_not_found"},
                         "models");
    }
    res.set_content(model_body(model_, static_cast<int64_t>(std::time(nullptr))),
                    "application/json");
    count("models", 200);
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
    count("metrics", 200);
  });
  h.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(kChatPage), "text/html; charset=utf-8");
    count("page", 200);
  });
  h.Post("/v1/chat/completions",
         [this](const httplib::Request& req, httplib::Response& res) { handle_chat(req, res); });
  h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(req, res);
  });
}

Status Server::listen(const std::function<void(int port)>& on_ready) {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) return io_error("serve: cannot bind " + options_.host + " to a free port");
  } else if (!http_->bind_to_port(options_.host, port)) {
    return io_error("serve: cannot bind " + options_.host + ":" + std::to_string(port) +
                    " (in use, or not an address of this machine)");
  }
  // listen_after_bind blocks; report readiness once it is accepting. httplib's stop() does
  // nothing before the listener runs, so a shutdown() that came first is carried out here.
  std::atomic<bool> returned{false};
  std::thread ready([this, port, &on_ready, &returned] {
    while (!http_->is_running() && !returned.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (returned.load()) return;
    if (stop_requested_.load()) {
      http_->stop();
    } else if (on_ready) {
      on_ready(port);
    }
  });
  const bool ok = http_->listen_after_bind();
  returned.store(true);
  ready.join();
  if (!ok && !draining_.load()) return io_error("serve: the listener stopped unexpectedly");
  return ok_status();
}

void Server::shutdown() {
  std::call_once(shutdown_once_, [this] {
    draining_.store(true);
    scheduler_.drain();  // every admitted request runs to its end
    std::unique_lock<std::mutex> lock(drain_mu_);
    drain_cv_.wait(lock, [this] { return in_flight_.load() == 0; });  // and is written
    stop_requested_.store(true);
    http_->stop();
  });
}

std::string Server::metrics_text() const {
  const SchedulerStats s = scheduler_.stats();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << v << '\n';
  };
  o.precision(12);
  {
    std::lock_guard<std::mutex> lock(counters_.mu);
    o << "# HELP frugal_http_requests_total HTTP requests by endpoint and status.\n"
         "# TYPE frugal_http_requests_total counter\n";
    for (const auto& [key, n] : counters_.requests) {
      const size_t sp = key.find(' ');
      o << "frugal_http_requests_total{endpoint=\"" << key.substr(0, sp) << "\",status=\""
        << key.substr(sp + 1) << "\"} " << n << '\n';
    }
    metric("frugal_client_disconnects_total", "counter",
           "Streams whose client left before the end (their sequences were cancelled).",
           static_cast<double>(counters_.disconnects));
    metric("frugal_time_to_first_token_seconds_sum", "counter",
           "Sum of request start to first token.", counters_.ttft_sum);
    metric("frugal_time_to_first_token_seconds_count", "counter", "Requests timed.",
           static_cast<double>(counters_.ttft_count));
  }
  metric("frugal_sequences_submitted_total", "counter", "Sequences accepted by the scheduler.",
         static_cast<double>(s.submitted));
  metric("frugal_sequences_rejected_total", "counter", "Sequences refused: queue full.",
         static_cast<double>(s.rejected));
  metric("frugal_sequences_finished_total", "counter", "Sequences that ran to their end.",
         static_cast<double>(s.finished));
  metric("frugal_sequences_cancelled_total", "counter", "Sequences cancelled (client left).",
         static_cast<double>(s.cancelled));
  metric("frugal_sequences_failed_total", "counter", "Sequences ended by an error.",
         static_cast<double>(s.failed));
  metric("frugal_prompt_tokens_total", "counter", "Prompt tokens of admitted sequences.",
         static_cast<double>(s.prompt_tokens));
  metric("frugal_prompt_tokens_cached_total", "counter",
         "Prompt tokens restored from prefix snapshots instead of prefilled.",
         static_cast<double>(s.cached_tokens));
  metric("frugal_generation_tokens_total", "counter", "Tokens sampled, counted at each step.",
         static_cast<double>(s.generated_tokens));
  metric("frugal_forward_steps_total", "counter", "Batched forward passes.",
         static_cast<double>(s.steps));
  metric("frugal_forward_busy_seconds_total", "counter", "Time inside forward passes.",
         s.busy_seconds);
  metric("frugal_batch_sequences_mean", "gauge", "Sequences per forward pass, mean.",
         s.steps > 0 ? static_cast<double>(s.step_sequences) / static_cast<double>(s.steps) : 0);
  metric("frugal_batch_tokens_mean", "gauge", "Tokens per forward pass, mean.",
         s.steps > 0 ? static_cast<double>(s.step_rows) / static_cast<double>(s.steps) : 0);
  metric("frugal_generation_tokens_per_busy_second", "gauge",
         "Generated tokens over time spent in forward passes.",
         s.busy_seconds > 0 ? static_cast<double>(s.generated_tokens) / s.busy_seconds : 0);
  metric("frugal_queue_depth", "gauge", "Sequences waiting for admission.",
         static_cast<double>(s.queued));
  metric("frugal_active_sequences", "gauge", "Sequences in flight.", static_cast<double>(s.active));
  metric("frugal_kv_cache_bytes", "gauge", "Bytes held by the kv caches of sequences in flight.",
         static_cast<double>(s.kv_bytes));
  metric("frugal_kv_cache_reserved_bytes", "gauge",
         "Bytes those caches may grow to (what admission counts).",
         static_cast<double>(s.kv_reserved_bytes));
  metric("frugal_prefix_cache_lookups_total", "counter", "Prefix snapshot lookups.",
         static_cast<double>(s.prefix.lookups));
  metric("frugal_prefix_cache_hits_total", "counter", "Lookups that restored a snapshot.",
         static_cast<double>(s.prefix.hits));
  metric("frugal_prefix_cache_hit_tokens_total", "counter", "Positions restored.",
         static_cast<double>(s.prefix.hit_tokens));
  metric("frugal_prefix_cache_evictions_total", "counter", "Snapshots evicted (LRU).",
         static_cast<double>(s.prefix.evictions));
  metric("frugal_prefix_cache_entries", "gauge", "Snapshots stored.",
         static_cast<double>(s.prefix.entries));
  metric("frugal_prefix_cache_bytes", "gauge", "Bytes of stored snapshots.",
         static_cast<double>(s.prefix.bytes));
  metric("frugal_in_flight_requests", "gauge", "HTTP requests being served.",
         static_cast<double>(in_flight_.load()));
  metric("frugal_uptime_seconds", "gauge", "Seconds since the server started.",
         steady_seconds() - started_);
  return o.str();
}

}  // namespace frugal::serve

// `frugal serve`: the HTTP front end of the scheduler, an OpenAI-compatible API on cpp-httplib
// (Debian's libcpp-httplib-dev: a maintained, header-first server with a thread per connection,
// chunked responses for SSE, payload limits and clean stop(); the scheduler, not the HTTP layer,
// is where concurrency is decided, so a thread-per-connection server is enough).
//
// Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models[/ID], GET /health,
// GET /metrics (Prometheus text), GET / (the chat page, built into the binary).
//
// Lifecycle: shutdown() (SIGTERM / SIGINT in the CLI) stops admitting requests (503), lets every
// request in flight finish and be written, then stops the listener; listen() then returns.
// A streaming client that disconnects is noticed at the next write (a token, or a keep-alive
// comment after a quiet second) and its sequences are cancelled: freed within one step.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "serve/api_request.h"
#include "serve/scheduler.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace frugal::serve {

struct RequestJob;  // handlers.cpp

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (reported to listen()'s callback)
  std::string model_id;                // the id clients name in "model"
  uint64_t max_body_bytes = 8u << 20;  // larger bodies get 413 before they are read
  int64_t default_max_tokens = 0;      // when a request gives none; 0 = up to the context end
  int http_threads = 0;                // 0: max_parallel + max_queue + 8
  // A non-streaming request still running after this long is answered through a chunked body
  // that writes a space each quiet second (so that a client that left is noticed); a quicker one
  // with an ordinary body and its own status.
  int64_t quick_answer_ms = 2000;
  int64_t keepalive_ms = 1000;  // the quiet time after which a stream or a long answer writes
};

// Counters the HTTP layer keeps for /metrics (the scheduler keeps its own).
struct HttpCounters {
  std::mutex mu;
  std::map<std::string, uint64_t> requests;  // "endpoint status" -> count
  uint64_t disconnects = 0;                  // streams cancelled because the client left
  uint64_t ttft_count = 0;
  double ttft_sum = 0.0;  // seconds
};

class Server {
 public:
  // `engine` and `scheduler` must outlive the server.
  static Result<std::unique_ptr<Server>> create(engine::Engine& engine, Scheduler& scheduler,
                                                ServerOptions options);
  ~Server();

  // Binds, calls on_ready(port) once it accepts connections, serves until shutdown().
  Status listen(const std::function<void(int port)>& on_ready);
  // Drains (see above) and stops; safe from any thread, once or more.
  void shutdown();
  std::string metrics_text() const;

 private:
  Server(engine::Engine& engine, Scheduler& scheduler, ServerOptions options);
  void routes();
  void handle_chat(const httplib::Request& req, httplib::Response& res);
  void handle_completion(const httplib::Request& req, httplib::Response& res);
  // Submits a generation request's choices and answers it: one body, or SSE as tokens come.
  void run(httplib::Response& res, std::shared_ptr<RequestJob> job, std::vector<int32_t> ids,
           std::vector<int64_t> snapshot_points, const GenParams& gen, const char* prompt_field,
           const char* endpoint);
  bool client_left(RequestJob& job);
  std::string final_body(RequestJob& job);
  // Counts the request in /metrics and, for an error, writes the OpenAI error object.
  void reply_error(httplib::Response& res, const ApiError& e, const char* endpoint);
  void count(const char* endpoint, int status);
  bool admitting() const { return !draining_.load(); }
  // While draining: answers 503 and returns true.
  bool refused_while_draining(httplib::Response& res, const char* endpoint);

  engine::Engine& engine_;
  Scheduler& scheduler_;
  const ServerOptions options_;
  ServedModel model_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_requested_{false};  // shutdown() reached the point of stopping
  std::atomic<int64_t> in_flight_{0};        // requests inside a handler or still streaming
  std::mutex drain_mu_;
  std::condition_variable drain_cv_;
  std::once_flag shutdown_once_;
  mutable HttpCounters counters_;
  const double started_ = 0.0;  // steady seconds at creation, for uptime
};

}  // namespace frugal::serve

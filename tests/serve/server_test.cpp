// The HTTP front end in-process on 127.0.0.1 and a free port, driven by cpp-httplib's client:
// malformed requests get the OpenAI error object with the right status naming the field (and the
// server keeps serving), oversized bodies are refused before they are read, a streaming client
// that disconnects frees its sequence, the queue bound answers 429, shutdown drains what is in
// flight, and a request sharing a conversation prefix restores it (cached_tokens).
#include "serve/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/test_model.h"

namespace frugal::serve {
namespace {

using Json = nlohmann::json;

struct Running {
  std::unique_ptr<engine::Engine> eng;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<Server> srv;
  std::thread th;
  int port = 0;
  Status listen_status;

  explicit Running(SchedulerOptions so, uint64_t max_body = 1 << 20, int64_t quick_ms = 2000,
                   int64_t keepalive_ms = 1000) {
    engine::EngineOptions eo;
    eo.model_dir = engine::test_model_dir();
    eo.threads = 2;
    eo.max_seq_len = 2048;
    eo.max_batch = so.max_parallel;
    eo.progress = false;
    auto e = engine::Engine::load(eo);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    eng = std::move(*e);
    auto s = Scheduler::create(*eng, so);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    sched = std::move(*s);
    auto v = Server::create(*eng, *sched,
                            {.port = 0,
                             .model_id = "tiny-v4",
                             .max_body_bytes = max_body,
                             .quick_answer_ms = quick_ms,
                             .keepalive_ms = keepalive_ms});
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    srv = std::move(*v);
    std::promise<int> ready;
    th = std::thread([&] { listen_status = srv->listen([&](int p) { ready.set_value(p); }); });
    port = ready.get_future().get();
  }
  ~Running() {
    srv->shutdown();
    th.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
};

Json body_of(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  return r ? Json::parse(r->body, nullptr, false) : Json();
}

// POST with a receiver that sees the body as it arrives; returning false closes the connection.
void post_streaming(httplib::Client& c, const std::string& path, const std::string& body,
                    const std::function<bool(const char*, size_t)>& receive) {
  httplib::Request rq;
  rq.method = "POST";
  rq.path = path;
  rq.headers = {{"Content-Type", "application/json"}};
  rq.body = body;
  rq.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) { return receive(d, n); };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(rq, res, err);
}

std::string chat(const std::string& user, int max_tokens) {
  return Json{{"model", "tiny-v4"},
              {"messages", {{{"role", "user"}, {"content", user}}}},
              {"max_tokens", max_tokens},
              {"temperature", 0}}
      .dump();
}

TEST(Server, MalformedRequestsNameTheFieldAndTheServerKeepsServing) {
  Running r({.max_parallel = 2});
  httplib::Client c = r.client();
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    const char* path;
    std::string body;
    int status;
    const char* param;  // "" = null
  };
  const std::string chat_path = "/v1/chat/completions", comp = "/v1/completions";
  const std::vector<Case> cases = {
      {"c", "{", 400, ""},
      {"c", "[1,2]", 400, ""},
      {"c", R"({)" + msgs + "}", 400, "model"},
      {"c", R"({"model":5,)" + msgs + "}", 400, "model"},
      {"c", R"({"model":"gpt-4",)" + msgs + "}", 404, "model"},
      {"c", R"({"model":"tiny-v4"})", 400, "messages"},
      {"c", R"({"model":"tiny-v4","messages":[]})", 400, "messages"},
      {"c", R"({"model":"tiny-v4","messages":{}})", 400, "messages"},
      {"c", R"({"model":"tiny-v4","messages":[{"content":"x"}]})", 400, "messages[0].role"},
      {"c", R"({"model":"tiny-v4","messages":[{"role":"wizard","content":"x"}]})", 400,
       "messages[0].role"},
      {"c", R"({"model":"tiny-v4","messages":[{"role":"user","content":7}]})", 400,
       "messages[0].content"},
      {"c", R"({"model":"tiny-v4","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       400, "messages[0].content[0].type"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"temperature":"hot"})", 400, "temperature"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"temperature":3.5})", 400, "temperature"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"top_p":0})", 400, "top_p"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"max_tokens":0})", 400, "max_tokens"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"max_tokens":1.5})", 400, "max_tokens"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"max_tokens":100000})", 400, "max_tokens"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"n":0})", 400, "n"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"stop":5})", 400, "stop"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"stop":["a",""]})", 400, "stop[1]"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"stream":"yes"})", 400, "stream"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"stream_options":{"include_usage":true}})", 400,
       "stream_options"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"logprobs":"yes"})", 400, "logprobs"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"logprobs":true,"top_logprobs":21})", 400,
       "top_logprobs"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"logit_bias":{"abc":1}})", 400, "logit_bias"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"logit_bias":{"99999999":1}})", 400,
       "logit_bias"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"seed":1.5})", 400, "seed"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"presence_penalty":3})", 400, "presence_penalty"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"tools":{}})", 400, "tools"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"tool_choice":"auto"})", 400, "tool_choice"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"frobnicate":1})", 400, "frobnicate"},
      {"c", R"({"model":"tiny-v4",)" + msgs + R"(,"reasoning_effort":"extreme"})", 400,
       "reasoning_effort"},
      {"p", R"({"model":"tiny-v4"})", 400, "prompt"},
      {"p", R"({"model":"tiny-v4","prompt":5})", 400, "prompt"},
      {"p", R"({"model":"tiny-v4","prompt":[1,-2]})", 400, "prompt[1]"},
      {"p", R"({"model":"tiny-v4","prompt":"hi","max_tokens":2047})", 400, "max_tokens"},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const Case& k : cases) {
    const std::string& path = std::string(k.path) == "c" ? chat_path : comp;
    httplib::Result res = c.Post(path, k.body, "application/json");
    ASSERT_TRUE(res) << k.body;
    EXPECT_EQ(res->status, k.status) << k.body << " -> " << res->body;
    const Json j = Json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << res->body;
    const Json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
    EXPECT_TRUE(e["type"].is_string());
    if (*k.param == '\0') {
      EXPECT_TRUE(e["param"].is_null()) << res->body;
    } else {
      EXPECT_EQ(e["param"], k.param) << k.body << " -> " << res->body;
      EXPECT_NE(e["message"].get<std::string>().find(k.param), std::string::npos) << res->body;
    }
  }
  // Routes and bodies httplib refuses itself still get the error object.
  httplib::Result nf = c.Get("/v1/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_TRUE(body_of(nf)["error"]["message"].is_string());
  // Still serving.
  httplib::Result ok = c.Post(chat_path, chat("Hello", 4), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(body_of(ok)["usage"]["completion_tokens"], 4);
  EXPECT_EQ(r.sched->stats().failed, 0u);
}

TEST(Server, OversizedBodyIsRefusedBeforeItIsRead) {
  Running r({.max_parallel = 1}, 4096);
  httplib::Client c = r.client();
  std::string big = chat(std::string(10000, 'a'), 4);
  httplib::Result res = c.Post("/v1/chat/completions", big, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(body_of(res)["error"]["message"].get<std::string>().find("4096"), std::string::npos);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST(Server, DisconnectedStreamIsCancelledAndFreed) {
  Running r({.max_parallel = 2});
  {
    httplib::Client c = r.client();
    Json req = Json::parse(chat("Tell me a story", 1800));  // far longer than the test
    req["stream"] = true;
    int chunks = 0;
    // Returning false from the receiver closes the connection mid-stream.
    post_streaming(c, "/v1/chat/completions", req.dump(),
                   [&](const char*, size_t) { return ++chunks < 3; });
    EXPECT_GE(chunks, 3);
  }
  // Within a few steps the sequence is cancelled and its cache released.
  for (int i = 0; i < 200 && r.sched->stats().cancelled == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  r.sched->drain();
  const SchedulerStats st = r.sched->stats();
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.kv_bytes, 0u);
  EXPECT_LT(st.generated_tokens, 1800u);
  EXPECT_NE(r.srv->metrics_text().find("frugal_client_disconnects_total 1"), std::string::npos);
}

TEST(Server, DisconnectedNonStreamingRequestIsCancelled) {
  Running r({.max_parallel = 2}, 1 << 20, /*quick_ms=*/50, /*keepalive_ms=*/50);
  {
    // A client that sends its request and hangs up without reading the answer.
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(r.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string body = chat("Speak on", 1800);
    const std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    close(fd);
  }
  // The server writes a space after each quiet 50 ms; a write after the client left fails.
  for (int i = 0; i < 400 && r.sched->stats().cancelled == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  r.sched->drain();
  const SchedulerStats st = r.sched->stats();
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_LT(st.generated_tokens, 1800u);
  EXPECT_EQ(st.kv_bytes, 0u);
}

TEST(Server, LongNonStreamingRequestIsAnsweredWhole) {
  Running r({.max_parallel = 1}, 1 << 20, /*quick_ms=*/50);
  httplib::Client c = r.client();
  // Outlasts the handler's own wait (50 ms here): answered by the chunked provider, with the
  // leading spaces JSON allows when it takes over a second.
  httplib::Result res = c.Post("/v1/completions",
                               R"({"model":"tiny-v4","prompt":"ROMEO:","max_tokens":2000,)"
                               R"("temperature":0,"ignore_eos":true})",
                               "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const Json j = body_of(res);
  EXPECT_EQ(j["usage"]["completion_tokens"], 2000) << res->body.substr(0, 200);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(Server, FullQueueAnswers429) {
  Running r({.max_parallel = 1, .max_queue = 0});
  std::atomic<int> ok{0}, busy{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      httplib::Client c = r.client();
      // Long enough that the others arrive while the first runs, even on a loaded machine.
      httplib::Result res = c.Post("/v1/chat/completions", chat("Hello", 1500), "application/json");
      if (res && res->status == 200) ++ok;
      if (res && res->status == 429) {
        ++busy;
        EXPECT_EQ(body_of(res)["error"]["code"], "queue_full");
        EXPECT_EQ(res->get_header_value("Retry-After"), "1");
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(busy.load(), 1);
  EXPECT_EQ(ok.load() + busy.load(), 4);
}

TEST(Server, ShutdownDrainsTheStreamInFlight) {
  auto r = std::make_unique<Running>(SchedulerOptions{.max_parallel = 2});
  Json req = Json::parse(chat("Speak", 48));
  req["stream"] = true;
  std::string streamed;
  std::promise<void> first;
  bool signalled = false;
  std::thread client([&] {
    httplib::Client c = r->client();
    post_streaming(c, "/v1/chat/completions", req.dump(), [&](const char* d, size_t n) {
      streamed.append(d, n);
      if (!signalled) {
        signalled = true;
        first.set_value();
      }
      return true;
    });
  });
  first.get_future().wait();
  r->srv->shutdown();  // returns once the stream was written to its end
  client.join();
  EXPECT_NE(streamed.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(streamed.find("\"finish_reason\":\"length\""), std::string::npos);
  r->th.join();
  EXPECT_TRUE(r->listen_status.ok()) << r->listen_status.to_string();
  r->th = std::thread([] {});  // the destructor joins it
}

TEST(Server, SharedConversationPrefixIsRestored) {
  Running r({.max_parallel = 2, .prefix_cache_bytes = 32u << 20});
  httplib::Client c = r.client();
  std::string system;
  for (int i = 0; i < 10; ++i) system += "Thou art a player in the tragedy of the king. ";
  auto req = [&](const std::string& user) {
    return Json{
        {"model", "tiny-v4"},
        {"messages",
         {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}}},
        {"max_tokens", 3},
        {"temperature", 0}}
        .dump();
  };
  const Json a = body_of(c.Post("/v1/chat/completions", req("Who art thou?"), "application/json"));
  const Json b = body_of(c.Post("/v1/chat/completions", req("Speak again."), "application/json"));
  EXPECT_EQ(a["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  const int64_t cached = b["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GT(cached, 60);  // the system turn
  EXPECT_LT(cached, b["usage"]["prompt_tokens"].get<int64_t>());
  EXPECT_NE(r.srv->metrics_text().find("frugal_prefix_cache_hits_total 1"), std::string::npos);
}

}  // namespace
}  // namespace frugal::serve

// The two generation endpoints: a request becomes n scheduler sequences (one per choice); their
// updates become one JSON body, or SSE chunks as they arrive. Chat replies go through
// OutputParser (reasoning / content / tool calls); completions are plain text.
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <random>
#include <utility>

#include "serve/api_response.h"
#include "serve/output_parser.h"
#include "serve/server.h"

namespace frugal::serve {
namespace {

using Clock = std::chrono::steady_clock;

// A submit() error as the API reports it.
ApiError submit_error(const Status& st) {
  ApiError e;
  e.message = st.message();
  switch (st.code()) {
    case StatusCode::kResourceExhausted:
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = "queue_full";
      break;
    case StatusCode::kUnsupported:
      e.status = 503;
      e.type = "server_error";
      e.code = "shutting_down";
      break;
    case StatusCode::kOutOfRange:
      e.code = "context_length_exceeded";
      break;
    case StatusCode::kInvalidArgument:
      break;
    default:
      e.status = 500;
      e.type = "server_error";
  }
  return e;
}

const char* finish_name(FinishReason r, bool tool_calls) {
  switch (r) {
    case FinishReason::kEos:
      return tool_calls ? "tool_calls" : "stop";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
    case FinishReason::kContextFull:
      return "length";
    default:
      return "";
  }
}

}  // namespace

// One request in flight: its choices and what has been sent of them.
struct RequestJob {
  struct Choice {
    std::shared_ptr<SequenceHandle> handle;
    std::unique_ptr<OutputParser> parser;  // chat
    std::string text;                      // completions: the choice's text so far
    int64_t sent_code_points = 0;          // completions stream: text_offset of the next chunk
    std::vector<TokenLogprob> logprobs;    // not yet sent (stream) or all (non-stream)
    int64_t completion_tokens = 0;
    int64_t cached_tokens = 0;
    FinishReason reason = FinishReason::kNone;
    Status error;
    bool started = false, done = false;
  };
  bool chat = true;
  bool stream = false;
  bool include_usage = false;
  int32_t top_logprobs = -1;
  ResponseMeta meta;
  std::string echo;  // completions: the prompt text, sent before the first token
  int64_t prompt_tokens = 0;
  std::shared_ptr<Notifier> notifier = std::make_shared<Notifier>();
  std::vector<Choice> choices;
  Clock::time_point t0 = Clock::now();
  bool timed_first = false;

  bool all_done() const {
    for (const Choice& c : choices) {
      if (!c.done) return false;
    }
    return true;
  }
  void cancel() {
    for (Choice& c : choices) {
      if (c.handle != nullptr) c.handle->cancel();
    }
  }
  Usage usage() const {
    Usage u{.prompt_tokens = prompt_tokens};
    for (const Choice& c : choices) {
      u.completion_tokens += c.completion_tokens;
      u.cached_tokens = std::max(u.cached_tokens, c.cached_tokens);
    }
    return u;
  }
  const Choice* failed() const {
    for (const Choice& c : choices) {
      if (c.done && (c.reason == FinishReason::kError || c.reason == FinishReason::kCancelled))
        return &c;
    }
    return nullptr;
  }
};

namespace {

using Job = RequestJob;

ApiError failure(const Job::Choice& c) {
  ApiError e{.status = 500, .type = "server_error"};
  if (c.reason == FinishReason::kCancelled) {  // only the scheduler's end cancels a live client
    e.status = 503;
    e.message = "the request was cancelled: the server is stopping";
    e.code = "shutting_down";
  } else {
    e.message = "generation failed: " + c.error.to_string();
  }
  return e;
}

// Takes what every choice produced since the last call; appends SSE events to *out when streaming.
// Returns whether anything was new.
bool absorb(Job& j, const tokenizer::Tokenizer& tok, HttpCounters& counters, std::string* out) {
  bool any = false;
  for (size_t i = 0; i < j.choices.size(); ++i) {
    Job::Choice& c = j.choices[i];
    SequenceUpdate u;
    while (!c.done && c.handle->take(&u)) {
      any = true;
      c.cached_tokens = u.cached_tokens;
      c.completion_tokens = u.completion_tokens;
      if (!u.tokens.empty() && !j.timed_first) {
        j.timed_first = true;
        std::lock_guard<std::mutex> lock(counters.mu);
        ++counters.ttft_count;
        counters.ttft_sum += std::chrono::duration<double>(Clock::now() - j.t0).count();
      }
      if (j.top_logprobs >= 0) {
        for (const TokenInfo& t : u.tokens) {
          TokenLogprob lp{.token = std::string(tok.token_bytes(t.id).value_or("")),
                          .logprob = t.logprob};
          for (const auto& [id, v] : t.top)
            lp.top.emplace_back(std::string(tok.token_bytes(id).value_or("")), v);
          c.logprobs.push_back(std::move(lp));
        }
      }
      const bool ending =
          u.finished && u.reason != FinishReason::kError && u.reason != FinishReason::kCancelled;
      if (u.finished) {
        c.done = true;
        c.reason = u.reason;
        c.error = u.error;
      }
      const int32_t index = static_cast<int32_t>(i);
      if (j.chat) {
        std::vector<OutputDelta> deltas = c.parser->push(u.text);
        if (ending) {
          std::vector<OutputDelta> rest = c.parser->finish(u.reason == FinishReason::kEos);
          deltas.insert(deltas.end(), std::make_move_iterator(rest.begin()),
                        std::make_move_iterator(rest.end()));
        }
        if (out == nullptr) continue;
        auto logprobs = [&]() -> std::optional<std::vector<TokenLogprob>> {
          if (j.top_logprobs < 0 || c.logprobs.empty()) return std::nullopt;
          return std::exchange(c.logprobs, {});
        };
        if (!c.started && !u.tokens.empty()) {  // the role first, as OpenAI's first chunk
          c.started = true;
          ChatChunk first{.index = index};
          first.delta.role = true;
          first.delta.content = "";
          *out += sse_event(chat_chunk_body(j.meta, first));
        }
        for (const OutputDelta& d : deltas) {
          ChatChunk ch{.index = index, .delta = chat_delta(d)};
          ch.logprobs = logprobs();
          *out += sse_event(chat_chunk_body(j.meta, ch));
        }
        if (ending) {
          ChatChunk last{.index = index,
                         .finish_reason = finish_name(u.reason, c.parser->has_tool_calls())};
          last.logprobs = logprobs();
          *out += sse_event(chat_chunk_body(j.meta, last));
        }
      } else {
        std::string piece;
        const bool echoed = !c.started && !u.tokens.empty();
        if (echoed) {
          c.started = true;
          piece = j.echo;
        }
        piece += u.text;
        c.text += piece;
        if (out == nullptr) continue;
        if (piece.empty() && !ending && c.logprobs.empty()) continue;
        CompletionChoice ch{.index = index,
                            .text = piece,
                            .finish_reason = ending ? finish_name(u.reason, false) : ""};
        if (j.top_logprobs >= 0) ch.logprobs = std::exchange(c.logprobs, {});
        // text_offset: where this chunk's first token starts in the choice's text (after the echo)
        ch.text_offset = c.sent_code_points + (echoed ? code_points(j.echo) : 0);
        c.sent_code_points += code_points(piece);
        *out += sse_event(completion_chunk_body(j.meta, ch));
      }
    }
  }
  return any;
}

}  // namespace

// The client left: its sequences are cancelled (freed within one step). Returns false, what a
// content provider returns to close the connection.
bool Server::client_left(RequestJob& job) {
  job.cancel();
  std::lock_guard<std::mutex> lock(counters_.mu);
  ++counters_.disconnects;
  return false;
}

// The whole response of a finished non-streaming request.
std::string Server::final_body(RequestJob& job) {
  const Usage usage = job.usage();
  if (job.chat) {
    std::vector<ChatChoice> choices;
    for (size_t i = 0; i < job.choices.size(); ++i) {
      Job::Choice& c = job.choices[i];
      std::optional<std::vector<TokenLogprob>> lp;
      if (job.top_logprobs >= 0) lp = std::move(c.logprobs);
      choices.push_back(chat_choice(*c.parser, static_cast<int32_t>(i),
                                    finish_name(c.reason, c.parser->has_tool_calls()),
                                    std::move(lp)));
    }
    return chat_completion_body(job.meta, choices, usage);
  }
  std::vector<CompletionChoice> choices;
  for (size_t i = 0; i < job.choices.size(); ++i) {
    Job::Choice& c = job.choices[i];
    CompletionChoice ch{.index = static_cast<int32_t>(i),
                        .text = c.text,
                        .finish_reason = finish_name(c.reason, false)};
    if (job.top_logprobs >= 0) {
      ch.logprobs = std::move(c.logprobs);
      ch.text_offset = code_points(job.echo);
    }
    choices.push_back(std::move(ch));
  }
  return completion_body(job.meta, choices, usage);
}

void Server::handle_chat(const httplib::Request& req, httplib::Response& res) {
  const char* kEndpoint = "chat";
  if (refused_while_draining(res, kEndpoint)) return;
  std::variant<ChatRequest, ApiError> parsed = parse_chat_request(req.body, model_);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(res, *e, kEndpoint);
  ChatRequest& r = std::get<ChatRequest>(parsed);
  const bool tools_on = r.has_tools && r.tool_choice != ToolChoice::kNone;
  if (!tools_on) {
    for (chat::Message& m : r.messages) m.tools = chat::Json();  // tool_choice "none": not shown
  }
  Result<std::string> prompt = chat::render_messages(r.messages, r.render);
  if (!prompt.ok()) return reply_error(res, api_error_from_status(prompt.status()), kEndpoint);
  const std::string prefill = forced_tool_prefill(r);
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  Result<std::vector<int32_t>> ids = tok.encode(*prompt + prefill, {.allow_special = true});
  if (!ids.ok()) return reply_error(res, api_error_from_status(ids.status()), kEndpoint);
  // Snapshot points: where the last user turn starts (the conversation before it is what the
  // next request of the same client shares) and the prompt less its last token.
  std::vector<int64_t> points = {static_cast<int64_t>(ids->size()) - 1};
  int last_user = -1;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    if (r.messages[i].role == "user") last_user = static_cast<int>(i);
  }
  if (last_user > 0) {
    std::vector<chat::Message> head(r.messages.begin(), r.messages.begin() + last_user);
    Result<std::string> head_text = chat::render_messages(std::move(head), r.render);
    if (head_text.ok() && prompt->starts_with(*head_text)) {
      Result<std::vector<int32_t>> head_ids = tok.encode(*head_text, {.allow_special = true});
      if (head_ids.ok() && head_ids->size() < ids->size() &&
          std::equal(head_ids->begin(), head_ids->end(), ids->begin())) {
        points.push_back(static_cast<int64_t>(head_ids->size()));
      }
    }
  }
  auto job = std::make_shared<Job>();
  job->chat = true;
  uint64_t id_state =
      std::random_device{}() ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  job->meta.id = make_id("chatcmpl-", &id_state);
  const uint64_t id_seed = id_state;
  for (int32_t i = 0; i < r.gen.n; ++i) {
    job->choices.emplace_back();
    job->choices.back().parser = std::make_unique<OutputParser>(
        r.render.thinking_mode, tools_on, prefill, id_seed + static_cast<uint64_t>(i));
  }
  run(res, job, std::move(*ids), std::move(points), r.gen, "messages", kEndpoint);
}

void Server::handle_completion(const httplib::Request& req, httplib::Response& res) {
  const char* kEndpoint = "completions";
  if (refused_while_draining(res, kEndpoint)) return;
  std::variant<CompletionRequest, ApiError> parsed = parse_completion_request(req.body, model_);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(res, *e, kEndpoint);
  CompletionRequest& r = std::get<CompletionRequest>(parsed);
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  auto job = std::make_shared<Job>();
  job->chat = false;
  std::vector<int32_t> ids;
  if (r.prompt_text) {  // as `frugal run`: BOS (when the config names one), then the text
    if (engine_.config().bos_token_id)
      ids.push_back(static_cast<int32_t>(*engine_.config().bos_token_id));
    const Status st = tok.encode_append(*r.prompt_text, {}, &ids);
    if (!st.ok()) return reply_error(res, api_error_from_status(st), kEndpoint);
    if (r.echo) job->echo = *r.prompt_text;
  } else {
    ids = r.prompt_ids;
    if (r.echo) {
      Result<std::string> text = tok.decode(ids);
      if (!text.ok()) return reply_error(res, api_error_from_status(text.status()), kEndpoint);
      job->echo = *text;
    }
  }
  if (ids.empty()) {
    return reply_error(res, {.message = "prompt: has no tokens", .param = "prompt"}, kEndpoint);
  }
  uint64_t id_state =
      std::random_device{}() ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  job->meta.id = make_id("cmpl-", &id_state);
  job->choices.resize(static_cast<size_t>(r.gen.n));
  std::vector<int64_t> points = {static_cast<int64_t>(ids.size()) - 1};
  run(res, job, std::move(ids), std::move(points), r.gen, "prompt", kEndpoint);
}

void Server::run(httplib::Response& res, std::shared_ptr<RequestJob> job, std::vector<int32_t> ids,
                 std::vector<int64_t> points, const GenParams& gen, const char* prompt_field,
                 const char* endpoint) {
  const int64_t ctx = scheduler_.max_seq_len();
  const int64_t n_prompt = static_cast<int64_t>(ids.size());
  if (n_prompt >= ctx) {
    return reply_error(res,
                       {.message = std::string(prompt_field) + ": this model's context holds " +
                                   std::to_string(ctx) + " tokens; the prompt has " +
                                   std::to_string(n_prompt) + " (and one more must be generated)",
                        .param = prompt_field,
                        .code = "context_length_exceeded"},
                       endpoint);
  }
  int64_t max_tokens = ctx - n_prompt;
  if (gen.max_tokens) {
    if (n_prompt + *gen.max_tokens > ctx) {
      return reply_error(
          res,
          {.message = "max_tokens: this model's context holds " + std::to_string(ctx) +
                      " tokens; you requested " + std::to_string(n_prompt + *gen.max_tokens) +
                      " (" + std::to_string(n_prompt) + " in the " + prompt_field + ", " +
                      std::to_string(*gen.max_tokens) + " in the completion)",
           .param = "max_tokens",
           .code = "context_length_exceeded"},
          endpoint);
    }
    max_tokens = *gen.max_tokens;
  } else if (options_.default_max_tokens > 0) {
    max_tokens = std::min(max_tokens, options_.default_max_tokens);
  }
  job->stream = gen.stream;
  job->include_usage = gen.include_usage;
  job->top_logprobs = gen.top_logprobs;
  job->meta.created = static_cast<int64_t>(std::time(nullptr));
  job->meta.model = model_.id;
  job->prompt_tokens = n_prompt;
  const uint64_t base_seed = gen.seed_given ? gen.sampling.seed : std::random_device{}();
  for (size_t i = 0; i < job->choices.size(); ++i) {
    SequenceParams p;
    p.prompt = ids;
    p.max_tokens = max_tokens;
    p.sampling = gen.sampling;
    p.sampling.seed = base_seed + i;
    p.stop_strings = gen.stop;
    p.stop_at_eos = !gen.ignore_eos;
    p.top_logprobs = gen.top_logprobs;
    p.snapshot_points = points;
    Result<std::shared_ptr<SequenceHandle>> h = scheduler_.submit(std::move(p), job->notifier);
    if (!h.ok()) {
      job->cancel();  // the choices submitted before this one
      return reply_error(res, submit_error(h.status()), endpoint);
    }
    job->choices[i].handle = std::move(*h);
  }
  // Counts the request as in flight until its response is written (shutdown waits for that).
  in_flight_.fetch_add(1);
  auto done = std::shared_ptr<void>(nullptr, [this](void*) {
    in_flight_.fetch_sub(1);
    std::lock_guard<std::mutex> lock(drain_mu_);
    drain_cv_.notify_all();
  });
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  if (!job->stream) {
    // Waits here for a while, so that a quick request is answered with its own status; a longer
    // one is answered from a chunked provider that writes a space (JSON allows leading white
    // space) each quiet second, so that a client that left is noticed and its sequences freed.
    uint64_t seen = 0;
    const Clock::time_point deadline =
        Clock::now() + std::chrono::milliseconds(options_.quick_answer_ms);
    while (!job->all_done() && Clock::now() < deadline) {
      if (!absorb(*job, tok, counters_, nullptr))
        job->notifier->wait(&seen, std::chrono::milliseconds(100));
    }
    if (job->all_done()) {
      if (const Job::Choice* f = job->failed()) return reply_error(res, failure(*f), endpoint);
      res.set_content(final_body(*job), "application/json");
      count(endpoint, 200);
      return;
    }
    count(endpoint, 200);
    res.set_chunked_content_provider(
        "application/json",
        [this, job, done](size_t, httplib::DataSink& sink) {
          const tokenizer::Tokenizer& tk = engine_.tokenizer();
          uint64_t seen_here = 0;
          Clock::time_point last_write = Clock::now();
          while (!job->all_done()) {
            if (absorb(*job, tk, counters_, nullptr)) continue;
            job->notifier->wait(&seen_here, std::chrono::milliseconds(100));
            if (Clock::now() - last_write > std::chrono::milliseconds(options_.keepalive_ms)) {
              if (!sink.write(" ", 1)) return client_left(*job);
              last_write = Clock::now();
            }
          }
          const Job::Choice* f = job->failed();
          const std::string body = f != nullptr ? error_body(failure(*f)) : final_body(*job);
          if (!sink.write(body.data(), body.size())) return client_left(*job);
          sink.done();
          return true;
        },
        [job](bool) { job->cancel(); });
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  count(endpoint, 200);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job, done](size_t, httplib::DataSink& sink) {
        const tokenizer::Tokenizer& tk = engine_.tokenizer();
        uint64_t seen = 0;
        Clock::time_point last_write = Clock::now();
        std::string out;
        auto write = [&](std::string_view s) {
          last_write = Clock::now();
          return sink.write(s.data(), s.size());
        };
        while (true) {
          out.clear();
          const bool any = absorb(*job, tk, counters_, &out);
          if (!out.empty() && !write(out)) break;
          if (job->all_done()) {
            if (const Job::Choice* f = job->failed()) {
              if (!write(sse_event(error_body(failure(*f))))) break;
            } else if (job->include_usage) {
              const Usage u = job->usage();
              const std::string body = job->chat ? chat_usage_chunk_body(job->meta, u)
                                                 : completion_usage_chunk_body(job->meta, u);
              if (!write(sse_event(body))) break;
            }
            if (!write(kSseDone)) break;
            sink.done();
            return true;
          }
          if (!any) {
            job->notifier->wait(&seen, std::chrono::milliseconds(100));
            // A quiet stream (a long prefill, text held back for a stop string) still finds out
            // whether its client is there: an SSE comment every second.
            if (Clock::now() - last_write > std::chrono::milliseconds(options_.keepalive_ms) &&
                !write(": keep-alive\n\n"))
              break;
          }
        }
        return client_left(*job);
      },
      [job](bool) { job->cancel(); });
}

}  // namespace frugal::serve

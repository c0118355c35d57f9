#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace frugal::engine {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEos:
      return "eos";
    case StopReason::kStopString:
      return "stop string";
    case StopReason::kMaxTokens:
      return "token limit";
    case StopReason::kContextFull:
      return "context full";
  }
  return "?";
}

double GenerationStats::prefill_tokens_per_s() const {
  const int64_t n = prompt_tokens - reused_tokens;
  return prefill_seconds > 0 ? static_cast<double>(n) / prefill_seconds : 0.0;
}

double GenerationStats::decode_tokens_per_s() const {
  return decode_seconds > 0 ? static_cast<double>(decode_steps) / decode_seconds : 0.0;
}

std::string GenerationStats::summary() const {
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "prompt %lld tok (reused %lld), generated %lld tok (%s); prefill %.1f tok/s, "
                "decode %.1f tok/s; kv cache %s, peak rss %s",
                static_cast<long long>(prompt_tokens), static_cast<long long>(reused_tokens),
                static_cast<long long>(generated_tokens), stop_reason_name(stop),
                prefill_tokens_per_s(), decode_tokens_per_s(), format_bytes(kv_bytes).c_str(),
                format_bytes(peak_rss).c_str());
  return buf;
}

Generator::Generator(Engine& engine, GenerateOptions options, sample::Sampler sampler,
                     sample::StopChecker stop, std::unique_ptr<kv::V4SequenceCache> cache)
    : engine_(&engine),
      options_(std::move(options)),
      sampler_(std::move(sampler)),
      stop_(std::move(stop)),
      decoder_(engine.tokenizer()),
      cache_(std::move(cache)),
      logits_(static_cast<size_t>(engine.config().vocab_size)) {}

Result<std::unique_ptr<Generator>> Generator::create(Engine& engine,
                                                     const GenerateOptions& options) {
  if (!engine.has_tokenizer()) return invalid_argument("generator: the engine has no tokenizer");
  if (options.max_tokens < 0) return invalid_argument("max tokens must be >= 0");
  FRUGAL_ASSIGN_OR_RETURN(
      sample::Sampler sampler,
      sample::Sampler::create(static_cast<int32_t>(engine.config().vocab_size), options.sampling));
  std::vector<int32_t> stop_tokens;
  if (options.stop_at_eos) {
    for (int64_t id : engine.config().eos_token_ids)
      stop_tokens.push_back(static_cast<int32_t>(id));
    if (auto eos = engine.tokenizer().eos_id()) stop_tokens.push_back(*eos);
  }
  FRUGAL_ASSIGN_OR_RETURN(sample::StopChecker stop,
                          sample::StopChecker::create(options.stop_strings, stop_tokens));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache, engine.new_cache());
  return std::unique_ptr<Generator>(
      new Generator(engine, options, std::move(sampler), std::move(stop), std::move(cache)));
}

void Generator::reset() {
  cache_->clear();
  history_.clear();
}

Status Generator::feed(std::span<const int32_t> ids) {
  FRUGAL_RETURN_IF_ERROR(engine_->model().forward(
      *cache_, {.ids = ids, .logits_mode = v4::LogitsMode::kLast, .logits = logits_}));
  history_.insert(history_.end(), ids.begin(), ids.end());
  return ok_status();
}

Result<GenerationStats> Generator::generate(std::span<const int32_t> prompt,
                                            const TextCallback& on_text) {
  GenerationStats st;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return invalid_argument("the prompt has no tokens");
  const int64_t max_len = engine_->model().max_seq_len();
  if (st.prompt_tokens >= max_len) {
    return invalid_argument("the prompt has " + std::to_string(prompt.size()) +
                            " tokens; the context holds " + std::to_string(max_len) +
                            " (raise --ctx)");
  }
  // Prefix reuse: keep the cache when it holds a strict prefix of the prompt.
  const bool reuse = history_.size() < prompt.size() &&
                     std::equal(history_.begin(), history_.end(), prompt.begin());
  if (!reuse) reset();
  // An error part-way leaves the cache in an unknown state: the next prompt starts over.
  struct ResetOnError {
    Generator* g;
    bool ok = false;
    ~ResetOnError() {
      if (!ok) g->reset();
    }
  } guard{this};
  st.reused_tokens = static_cast<int64_t>(history_.size());
  sampler_.reset(options_.sampling.seed);
  for (int32_t id : prompt) sampler_.accept(id);
  stop_.reset();
  decoder_.reset();

  auto t0 = Clock::now();
  FRUGAL_RETURN_IF_ERROR(feed(prompt.subspan(history_.size())));
  st.prefill_seconds = since(t0);

  const int64_t limit = std::min(options_.max_tokens, max_len - st.prompt_tokens);
  std::string text;
  t0 = Clock::now();
  bool stopped = false;
  while (st.generated_tokens < limit) {
    FRUGAL_ASSIGN_OR_RETURN(int32_t tok, sampler_.sample(logits_));
    sampler_.accept(tok);
    ++st.generated_tokens;
    st.ids.push_back(tok);
    text.clear();
    if (!stop_.is_stop_token(tok)) FRUGAL_RETURN_IF_ERROR(decoder_.push(tok, &text));
    const sample::StopChecker::Step step = stop_.push(tok, text);
    if (!step.emit.empty()) FRUGAL_RETURN_IF_ERROR(on_text(step.emit));
    if (step.stop) {
      st.stop = stop_.is_stop_token(tok) ? StopReason::kEos : StopReason::kStopString;
      stopped = true;
      break;
    }
    if (st.generated_tokens == limit) break;  // the last token needs no forward pass
    const int32_t one[1] = {tok};
    FRUGAL_RETURN_IF_ERROR(feed(one));
    ++st.decode_steps;
  }
  st.decode_seconds = since(t0);
  if (!stopped) {
    st.stop = limit < options_.max_tokens ? StopReason::kContextFull : StopReason::kMaxTokens;
    text.clear();
    decoder_.finish(&text);
    std::string tail(text);
    if (!tail.empty()) {
      const sample::StopChecker::Step step = stop_.push(-1, tail);
      if (!step.emit.empty()) FRUGAL_RETURN_IF_ERROR(on_text(step.emit));
    }
    const std::string_view rest = stop_.flush();
    if (!rest.empty()) FRUGAL_RETURN_IF_ERROR(on_text(rest));
  }
  st.kv_bytes = cache_->memory_report().total();
  st.peak_rss = peak_rss_bytes();
  guard.ok = true;
  return st;
}

}  // namespace frugal::engine

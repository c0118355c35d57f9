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
  return decode_seconds > 0 ? static_cast<double>(decoded_tokens) / decode_seconds : 0.0;
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
  std::string out = buf;
  if (spec_k > 0) {
    std::snprintf(buf, sizeof(buf), "; speculative k=%d: %lld of %lld drafts accepted (%.2f)",
                  spec_k, static_cast<long long>(spec.accepted),
                  static_cast<long long>(spec.drafted), spec.acceptance());
    out += buf;
  }
  if (probe_plain_tokens_per_s > 0) {
    std::snprintf(buf, sizeof(buf), "; auto: plain %.1f vs speculative %.1f tok/s -> %s",
                  probe_plain_tokens_per_s, probe_spec_tokens_per_s,
                  probe_spec_tokens_per_s > probe_plain_tokens_per_s ? "speculative" : "plain");
    out += buf;
  }
  return out;
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
  std::unique_ptr<Generator> g(
      new Generator(engine, options, std::move(sampler), std::move(stop), std::move(cache)));
  // A parallel run (docs/PARALLEL.md): every process must make the same calls, so auto's timing
  // decision (each process would time its own rounds) is off; the MTP block needs one stage.
  const v4::Exchange* exchange = engine.exchange();
  if (exchange != nullptr && options.spec.mode == SpecMode::kOn && exchange->shard().stages > 1) {
    return unsupported("--spec " + std::to_string(options.spec.draft_tokens) +
                       ": speculative decoding needs the MTP block in one pipeline stage; run "
                       "with --spec off or without --pipeline-stages");
  }
  if (options.spec.mode == SpecMode::kOn) {
    FRUGAL_ASSIGN_OR_RETURN(g->spec_,
                            Speculator::create(engine.model(), options.spec.draft_tokens));
  } else if (options.spec.mode == SpecMode::kAuto && exchange == nullptr) {
    if (options.spec.probe_rounds < 1) return invalid_argument("spec probe_rounds must be >= 1");
    // auto runs only where it can: a model without an MTP block, or a chunk too small for the
    // verify pass, decodes plainly.
    auto s = Speculator::create(engine.model(), options.spec.draft_tokens);
    if (s.ok()) {
      g->spec_ = std::move(*s);
      g->auto_state_ = AutoState::kProbing;
    }
  }
  return g;
}

void Generator::reset() {
  cache_->clear();
  history_.clear();
  if (spec_ != nullptr) spec_->reset();
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
  // Prefix reuse: keep the cache when it holds a strict prefix of the prompt (and, speculating,
  // the MTP block is in step with it).
  const bool reuse = history_.size() < prompt.size() &&
                     std::equal(history_.begin(), history_.end(), prompt.begin()) &&
                     (!speculating() || spec_->in_step(*cache_));
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
  if (speculating()) {  // the MTP block runs on the prompt too, to draft from it
    const std::span<const int32_t> fresh = prompt.subspan(history_.size());
    FRUGAL_RETURN_IF_ERROR(spec_->prefill(*cache_, fresh, logits_));
    history_.insert(history_.end(), fresh.begin(), fresh.end());
  } else {
    FRUGAL_RETURN_IF_ERROR(feed(prompt.subspan(history_.size())));
  }
  st.prefill_seconds = since(t0);

  const int64_t limit = std::min(options_.max_tokens, max_len - st.prompt_tokens);
  t0 = Clock::now();
  bool stopped = false;
  const SpeculationStats spec0 = spec_ != nullptr ? spec_->stats() : SpeculationStats{};
  const bool probing = spec_ != nullptr && auto_state_ == AutoState::kProbing;
  FRUGAL_RETURN_IF_ERROR(decode(limit, st, on_text, stopped));
  st.decode_seconds = since(t0);
  if (spec_ != nullptr && spec_->stats().rounds > spec0.rounds) {
    st.spec_k = spec_->draft_tokens();
    st.spec = {.rounds = spec_->stats().rounds - spec0.rounds,
               .drafted = spec_->stats().drafted - spec0.drafted,
               .accepted = spec_->stats().accepted - spec0.accepted};
  }
  if (probing && auto_state_ != AutoState::kProbing) {  // auto decided in this generation
    st.probe_plain_tokens_per_s = double(probe_plain_steps_) / probe_plain_seconds_;
    st.probe_spec_tokens_per_s = double(probe_spec_tokens_) / probe_spec_seconds_;
  }
  std::string text;
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

Status Generator::decode(int64_t limit, GenerationStats& st, const TextCallback& on_text,
                         bool& stopped) {
  if (limit <= 0) return ok_status();
  std::string text;
  // Hands one sampled token to the caller; true when generation ends with it.
  auto emit = [&](int32_t tok) -> Result<bool> {
    ++st.generated_tokens;
    st.ids.push_back(tok);
    text.clear();
    if (!stop_.is_stop_token(tok)) FRUGAL_RETURN_IF_ERROR(decoder_.push(tok, &text));
    const sample::StopChecker::Step step = stop_.push(tok, text);
    if (!step.emit.empty()) FRUGAL_RETURN_IF_ERROR(on_text(step.emit));
    if (step.stop) {
      st.stop = stop_.is_stop_token(tok) ? StopReason::kEos : StopReason::kStopString;
      stopped = true;
    }
    return stopped || st.generated_tokens == limit;  // the last token needs no forward pass
  };
  const int64_t max_len = engine_->model().max_seq_len();
  FRUGAL_ASSIGN_OR_RETURN(int32_t tok, sampler_.sample(logits_));
  sampler_.accept(tok);
  FRUGAL_ASSIGN_OR_RETURN(bool done, emit(tok));
  while (!done) {
    const bool room = spec_ != nullptr && cache_->length() + spec_->draft_tokens() + 1 <= max_len;
    const bool probe_plain =
        auto_state_ == AutoState::kProbing && probe_spec_rounds_ >= options_.spec.probe_rounds;
    // A round for one last token would verify drafts nobody reads: a plain step does.
    const bool more_than_one = limit - st.generated_tokens > 1;
    if (speculating() && room && !probe_plain && more_than_one) {
      // A round: tok and the accepted drafts enter the cache; the last token returned is next.
      // Timed without the emission (the caller's output), as the plain probe times its forward.
      auto t0 = Clock::now();
      FRUGAL_ASSIGN_OR_RETURN(std::span<const int32_t> out, spec_->round(*cache_, tok, sampler_));
      double round_seconds = since(t0);
      history_.push_back(tok);
      int64_t kept = static_cast<int64_t>(out.size()) - 1;
      for (size_t i = 0; i < out.size(); ++i) {
        FRUGAL_ASSIGN_OR_RETURN(done, emit(out[i]));
        ++st.decoded_tokens;
        if (done) {  // the stopping token is not fed, as in a plain step
          kept = std::min<int64_t>(kept, static_cast<int64_t>(i));
          break;
        }
      }
      t0 = Clock::now();
      FRUGAL_RETURN_IF_ERROR(spec_->finish_round(*cache_, kept));
      round_seconds += since(t0);
      history_.insert(history_.end(), out.begin(), out.begin() + kept);
      tok = out.back();
      ++st.decode_steps;
      if (auto_state_ == AutoState::kProbing) {
        probe_spec_seconds_ += round_seconds;
        probe_spec_tokens_ += static_cast<int64_t>(out.size());
        ++probe_spec_rounds_;
      }
      continue;
    }
    const int32_t one[1] = {tok};
    if (speculating()) {  // in step with the MTP block: auto's plain probe, or near the end
      FRUGAL_ASSIGN_OR_RETURN(const double seconds, spec_->plain_step(*cache_, tok, logits_));
      history_.push_back(tok);
      if (probe_plain) {
        probe_plain_seconds_ += seconds;
        if (++probe_plain_steps_ == options_.spec.probe_rounds) {
          const double plain = double(probe_plain_steps_) / probe_plain_seconds_;
          const double spec = double(probe_spec_tokens_) / probe_spec_seconds_;
          auto_state_ = spec > plain ? AutoState::kOn : AutoState::kOff;
        }
      }
    } else {
      FRUGAL_RETURN_IF_ERROR(feed(one));
    }
    ++st.decode_steps;
    FRUGAL_ASSIGN_OR_RETURN(tok, sampler_.sample(logits_));
    sampler_.accept(tok);
    ++st.decoded_tokens;
    FRUGAL_ASSIGN_OR_RETURN(done, emit(tok));
  }
  return ok_status();
}

}  // namespace frugal::engine

#include "serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/memory_plan.h"
#include "sample/stop.h"
#include "tokenizer/stream_decoder.h"

namespace frugal::serve {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

// ---- SequenceHandle, scheduler side (take() and the Notifier are in sequence_handle.cpp) ----

template <typename F>
void SequenceHandle::publish(F&& change) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    change(pending_);
    fresh_ = true;
  }
  notifier_->notify();
}

// ---- one sequence, as the scheduler thread sees it ----

struct Scheduler::Seq {
  Seq(std::shared_ptr<SequenceHandle> h, SequenceParams params, sample::Sampler smp,
      sample::StopChecker st, const tokenizer::Tokenizer& tok, int32_t vocab, uint64_t reserve)
      : handle(std::move(h)),
        p(std::move(params)),
        sampler(std::move(smp)),
        stop(std::move(st)),
        decoder(tok),
        logits(static_cast<size_t>(vocab)),
        kv_reserved(reserve) {}

  std::shared_ptr<SequenceHandle> handle;
  SequenceParams p;
  sample::Sampler sampler;
  sample::StopChecker stop;
  tokenizer::StreamDecoder decoder;
  std::unique_ptr<kv::V4SequenceCache> cache;
  std::vector<float> logits;  // [vocab] of the last position fed
  uint64_t kv_reserved = 0;
  int64_t fed = 0;    // prompt positions in the cache
  int32_t next = -1;  // the last sampled token: the next step feeds it
  int64_t generated = 0;
  size_t next_point = 0;  // first snapshot point not yet passed
  bool done = false;
  FinishReason reason = FinishReason::kNone;
  bool prefilling() const { return fed < static_cast<int64_t>(p.prompt.size()); }
};

// ---- Scheduler ----

Scheduler::Scheduler(engine::Engine& engine, const SchedulerOptions& options)
    : engine_(engine),
      options_(options),
      max_seq_len_(engine.model().max_seq_len()),
      vocab_(static_cast<int32_t>(engine.config().vocab_size)),
      top_scratch_(static_cast<size_t>(engine.config().vocab_size)) {}

Result<std::unique_ptr<Scheduler>> Scheduler::create(engine::Engine& engine,
                                                     const SchedulerOptions& options) {
  if (!engine.has_tokenizer()) return invalid_argument("scheduler: the engine has no tokenizer");
  const int64_t chunk = engine.model().max_chunk();
  if (options.max_parallel < 1 || options.max_parallel > engine.options().max_batch) {
    return invalid_argument("scheduler: max_parallel " + std::to_string(options.max_parallel) +
                            " must lie in [1, " + std::to_string(engine.options().max_batch) +
                            "] (the engine's max_batch)");
  }
  if (options.max_parallel > chunk) {
    return invalid_argument("scheduler: max_parallel " + std::to_string(options.max_parallel) +
                            " exceeds the model's chunk of " + std::to_string(chunk) + " tokens");
  }
  if (options.max_queue < 0) return invalid_argument("scheduler: max_queue must be >= 0");
  if (options.prefill_chunk < 0) return invalid_argument("scheduler: prefill_chunk must be >= 0");
  std::unique_ptr<Scheduler> s(new Scheduler(engine, options));
  for (int64_t id : engine.config().eos_token_ids)
    s->stop_tokens_.push_back(static_cast<int32_t>(id));
  if (auto eos = engine.tokenizer().eos_id()) s->stop_tokens_.push_back(*eos);
  if (options.prefix_cache_bytes > 0)
    s->prefix_ = std::make_unique<PrefixCache>(options.prefix_cache_bytes);
  s->entries_.reserve(static_cast<size_t>(chunk));
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    accepting_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& s : active_) finish(*s, FinishReason::kCancelled);
  for (auto& s : queue_) finish(*s, FinishReason::kCancelled);
}

uint64_t Scheduler::kv_reserve_bytes(const SequenceParams& p) const {
  const int64_t tokens =
      std::min<int64_t>(static_cast<int64_t>(p.prompt.size()) + p.max_tokens, max_seq_len_);
  return engine::kv_bytes_at(engine_.config(), engine_.options().cache, tokens).total();
}

Result<std::shared_ptr<SequenceHandle>> Scheduler::submit(SequenceParams params,
                                                          std::shared_ptr<Notifier> notifier) {
  const int64_t n = static_cast<int64_t>(params.prompt.size());
  if (n == 0) return invalid_argument("the prompt has no tokens");
  if (n >= max_seq_len_) {
    return out_of_range("the prompt has " + std::to_string(n) + " tokens; the context holds " +
                        std::to_string(max_seq_len_) + " with at least one to generate");
  }
  for (size_t i = 0; i < params.prompt.size(); ++i) {
    if (params.prompt[i] < 0 || params.prompt[i] >= vocab_) {
      return invalid_argument("prompt[" + std::to_string(i) +
                              "] = " + std::to_string(params.prompt[i]) +
                              " is outside the vocabulary [0, " + std::to_string(vocab_) + ")");
    }
  }
  if (params.max_tokens < 1) return invalid_argument("max_tokens must be >= 1");
  if (params.top_logprobs > 20) return invalid_argument("top_logprobs must be <= 20");
  std::vector<int64_t>& pts = params.snapshot_points;
  std::erase_if(pts, [n](int64_t p) { return p <= 0 || p >= n; });
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  FRUGAL_ASSIGN_OR_RETURN(sample::Sampler sampler,
                          sample::Sampler::create(vocab_, params.sampling));
  FRUGAL_ASSIGN_OR_RETURN(
      sample::StopChecker stop,
      sample::StopChecker::create(params.stop_strings,
                                  params.stop_at_eos ? stop_tokens_ : std::vector<int32_t>{}));
  const uint64_t reserve = kv_reserve_bytes(params);
  if (options_.kv_budget > 0 && reserve > options_.kv_budget) {
    return out_of_range("the sequence may grow to " + engine::format_bytes(reserve) +
                        " of kv cache; the server's kv budget is " +
                        engine::format_bytes(options_.kv_budget));
  }
  if (notifier == nullptr) notifier = std::make_shared<Notifier>();
  auto handle = std::make_shared<SequenceHandle>(std::move(notifier));
  auto seq = std::make_unique<Seq>(handle, std::move(params), std::move(sampler), std::move(stop),
                                   engine_.tokenizer(), vocab_, reserve);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) return unsupported("the server is shutting down");
    // Room for max_parallel running and max_queue waiting (the queue holds both until admission).
    if (static_cast<int64_t>(queue_.size()) + stats_.active >=
        static_cast<int64_t>(options_.max_parallel) + options_.max_queue) {
      ++stats_.rejected;
      return resource_exhausted("the queue is full: " + std::to_string(options_.max_parallel) +
                                " sequences run at once and " + std::to_string(options_.max_queue) +
                                " may wait; retry later");
    }
    queue_.push_back(std::move(seq));
    ++stats_.submitted;
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return handle;
}

void Scheduler::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  accepting_ = false;
  cv_.notify_all();
  cv_.wait(lock, [&] { return queue_.empty() && stats_.active == 0; });
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerStats s = stats_;
  if (prefix_ != nullptr) s.prefix = prefix_->stats();
  return s;
}

void Scheduler::loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) return;
    }
    step();
  }
}

// A sequence whose prompt another one is prefilling right now (the choices of a request with
// n > 1, or the same prompt sent twice at once) waits until that prefill has stored its snapshot
// of the prompt less its last token: it then restores it and prefills one token instead of all.
bool Scheduler::waits_for_shared_prefill(const Seq& s,
                                         const std::vector<std::unique_ptr<Seq>>& admitted) const {
  const int64_t n = static_cast<int64_t>(s.p.prompt.size());
  if (prefix_ == nullptr ||
      !std::binary_search(s.p.snapshot_points.begin(), s.p.snapshot_points.end(), n - 1)) {
    return false;
  }
  auto same = [&](const Seq& t) { return !t.done && t.fed < n - 1 && t.p.prompt == s.p.prompt; };
  for (const auto& t : active_) {
    if (same(*t)) return true;
  }
  for (const auto& t : admitted) {
    if (same(*t)) return true;
  }
  return false;
}

void Scheduler::admit() {
  std::vector<std::unique_ptr<Seq>> admitted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t reserved = stats_.kv_reserved_bytes;
    size_t running = active_.size();
    for (auto it = queue_.begin();
         it != queue_.end() && static_cast<int32_t>(running) < options_.max_parallel;) {
      Seq& s = **it;
      if (!s.handle->cancelled() && options_.kv_budget > 0 && running > 0 &&
          reserved + s.kv_reserved > options_.kv_budget) {
        break;  // waits for memory: first come, first served
      }
      if (!s.handle->cancelled() && waits_for_shared_prefill(s, admitted)) {
        ++it;  // the others behind it go ahead
        continue;
      }
      reserved += s.kv_reserved;
      stats_.kv_reserved_bytes += s.kv_reserved;  // returned by release_finished
      admitted.push_back(std::move(*it));
      it = queue_.erase(it);
      ++running;
    }
    stats_.queued = static_cast<int64_t>(queue_.size());
    stats_.active = static_cast<int64_t>(running);  // drain() must not see them in neither place
  }
  for (auto& sp : admitted) {
    Seq& s = *sp;
    active_.push_back(std::move(sp));
    if (s.handle->cancelled()) {
      finish(s, FinishReason::kCancelled);
      continue;
    }
    if (!free_caches_.empty()) {
      s.cache = std::move(free_caches_.back());
      free_caches_.pop_back();
    } else {
      Result<std::unique_ptr<kv::V4SequenceCache>> c = engine_.new_cache();
      if (!c.ok()) {
        finish(s, FinishReason::kError, c.status());
        continue;
      }
      s.cache = std::move(*c);
    }
    if (prefix_ != nullptr) {
      if (std::shared_ptr<const PrefixEntry> hit = prefix_->lookup(s.p.prompt)) {
        if (s.cache->restore(hit->snapshot).ok()) {
          s.fed = static_cast<int64_t>(hit->ids.size());
          if (options_.mirror != nullptr) options_.mirror->restored(s.cache.get(), hit->id);
        } else {
          s.cache->clear();  // a snapshot of another format: prefill from the start
        }
      }
    }
    while (s.next_point < s.p.snapshot_points.size() && s.p.snapshot_points[s.next_point] <= s.fed)
      ++s.next_point;
    s.sampler.reset(s.p.sampling.seed);
    for (int32_t id : s.p.prompt) s.sampler.accept(id);
    const int64_t cached = s.fed;
    s.handle->publish([&](SequenceUpdate& u) {
      u.prompt_tokens = static_cast<int64_t>(s.p.prompt.size());
      u.cached_tokens = cached;
    });
    std::lock_guard<std::mutex> lock(mu_);
    stats_.prompt_tokens += s.p.prompt.size();
    stats_.cached_tokens += static_cast<uint64_t>(cached);
    stats_.active = static_cast<int64_t>(active_.size());
  }
}

bool Scheduler::step() {
  for (auto& s : active_) {
    if (!s->done && s->handle->cancelled()) finish(*s, FinishReason::kCancelled);
  }
  release_finished();
  admit();
  release_finished();  // what admission failed or found cancelled
  if (active_.empty()) return false;

  const int64_t chunk = engine_.model().max_chunk();
  const int64_t per_seq = options_.prefill_chunk > 0 ? options_.prefill_chunk : chunk;
  entries_.clear();
  entry_seq_.clear();
  entry_n_.clear();
  int64_t budget = chunk;
  for (auto& sp : active_) {  // every decoding sequence: one token
    Seq& s = *sp;
    if (s.prefilling()) continue;
    entries_.push_back({.cache = s.cache.get(),
                        .ids = std::span<const int32_t>(&s.next, 1),
                        .logits_mode = v4::LogitsMode::kLast,
                        .logits = s.logits});
    entry_seq_.push_back(&s);
    entry_n_.push_back(0);
    --budget;
  }
  for (auto& sp : active_) {  // then prompt chunks, first come first served, in what is left
    Seq& s = *sp;
    if (!s.prefilling() || budget <= 0) continue;
    const int64_t prompt = static_cast<int64_t>(s.p.prompt.size());
    int64_t n = std::min({prompt - s.fed, budget, per_seq});
    if (s.next_point < s.p.snapshot_points.size())
      n = std::min(n, s.p.snapshot_points[s.next_point] - s.fed);
    const bool last = s.fed + n == prompt;
    entries_.push_back({.cache = s.cache.get(),
                        .ids = std::span<const int32_t>(s.p.prompt).subspan(s.fed, n),
                        .logits_mode = last ? v4::LogitsMode::kLast : v4::LogitsMode::kNone,
                        .logits = last ? std::span<float>(s.logits) : std::span<float>()});
    entry_seq_.push_back(&s);
    entry_n_.push_back(n);
    budget -= n;
  }
  if (entries_.empty()) return false;

  const Clock::time_point t0 = Clock::now();
  Status st = options_.mirror != nullptr ? options_.mirror->before_forward(entries_) : ok_status();
  if (st.ok()) st = engine_.model().forward_batch(entries_);
  const double seconds = since(t0);
  for (size_t i = 0; i < entries_.size(); ++i) {
    Seq& s = *entry_seq_[i];
    if (!st.ok()) {
      finish(s, FinishReason::kError, st);
      continue;
    }
    const Status post = after_forward(s, entry_n_[i]);
    if (!post.ok()) finish(s, FinishReason::kError, post);
  }
  uint64_t kv = 0;
  for (auto& s : active_) {
    if (s->cache != nullptr) kv += s->cache->memory_report().total();
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.generated_tokens += std::exchange(step_tokens_, 0);
  ++stats_.steps;
  stats_.step_rows += static_cast<uint64_t>(chunk - budget);
  stats_.step_sequences += entries_.size();
  stats_.busy_seconds += seconds;
  stats_.kv_bytes = kv;
  return true;
}

Status Scheduler::after_forward(Seq& s, int64_t n_fed) {
  if (n_fed > 0) {  // a prompt chunk
    s.fed += n_fed;
    if (s.next_point < s.p.snapshot_points.size() && s.p.snapshot_points[s.next_point] == s.fed) {
      ++s.next_point;  // the chunks are cut there whether or not prefix reuse is on
      const std::span<const int32_t> ids(s.p.prompt.data(), static_cast<size_t>(s.fed));
      if (prefix_ != nullptr && !prefix_->contains(ids)) {
        FRUGAL_ASSIGN_OR_RETURN(kv::V4CacheSnapshot snap, s.cache->snapshot());
        auto entry = std::make_shared<PrefixEntry>();
        entry->ids.assign(ids.begin(), ids.end());
        entry->snapshot = std::move(snap);
        if (StepMirror* m = options_.mirror; m != nullptr) {  // the others snapshot theirs
          entry->id = m->new_snapshot_id();
          m->snapshotted(s.cache.get(), entry->id);
          entry->on_drop =
              std::shared_ptr<void>(nullptr, [m, id = entry->id](void*) { m->dropped(id); });
        }
        prefix_->insert(std::move(entry));
      }
    }
    if (s.prefilling()) return ok_status();
  }
  sample_token(s);
  return ok_status();
}

void Scheduler::sample_token(Seq& s) {
  Result<int32_t> sampled = s.sampler.sample(s.logits);
  if (!sampled.ok()) return finish(s, FinishReason::kError, sampled.status());
  const int32_t tok = *sampled;
  s.sampler.accept(tok);
  TokenInfo info;
  info.id = tok;
  if (s.p.top_logprobs >= 0) {  // log softmax of the raw logits
    const std::span<const float> l(s.logits);
    const float mx = *std::max_element(l.begin(), l.end());
    double sum = 0.0;
    for (float v : l) sum += std::exp(static_cast<double>(v - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    info.logprob = l[static_cast<size_t>(tok)] - lse;
    const size_t k = std::min<size_t>(static_cast<size_t>(s.p.top_logprobs), l.size());
    if (k > 0) {
      for (size_t i = 0; i < l.size(); ++i)
        top_scratch_[i] = {-l[i],
                           static_cast<int32_t>(i)};  // ascending = best first, low id on ties
      std::partial_sort(top_scratch_.begin(), top_scratch_.begin() + static_cast<ptrdiff_t>(k),
                        top_scratch_.end());
      for (size_t i = 0; i < k; ++i)
        info.top.emplace_back(top_scratch_[i].second, -top_scratch_[i].first - lse);
    }
  }
  ++s.generated;
  ++step_tokens_;
  std::string text;
  if (!s.stop.is_stop_token(tok)) {
    const Status dec = s.decoder.push(tok, &text);
    if (!dec.ok()) return finish(s, FinishReason::kError, dec);
  }
  const sample::StopChecker::Step step = s.stop.push(tok, text);
  const bool first = s.generated == 1;
  s.handle->publish([&](SequenceUpdate& u) {
    u.started = true;
    u.text.append(step.emit);
    u.tokens.push_back(std::move(info));
    u.completion_tokens = s.generated;
    if (first && s.p.capture_logits) u.first_logits = s.logits;
  });
  if (step.stop) {
    return finish(s, s.stop.is_stop_token(tok) ? FinishReason::kEos : FinishReason::kStop);
  }
  if (s.generated >= s.p.max_tokens) return finish(s, FinishReason::kLength);
  if (s.cache->length() + 1 > max_seq_len_) return finish(s, FinishReason::kContextFull);
  s.next = tok;
}

void Scheduler::finish(Seq& s, FinishReason reason, Status error) {
  if (s.done) return;
  s.done = true;
  s.reason = reason;
  std::string tail;
  if (reason == FinishReason::kLength || reason == FinishReason::kContextFull) {
    // Text held back for a possible stop string or an incomplete character is the reply's end.
    std::string rest;
    s.decoder.finish(&rest);
    if (!rest.empty()) tail.append(s.stop.push(-1, rest).emit);
    tail.append(s.stop.flush());
  }
  s.handle->publish([&](SequenceUpdate& u) {
    u.text.append(tail);
    u.finished = true;
    u.reason = reason;
    u.error = std::move(error);
    u.completion_tokens = s.generated;
  });
}

void Scheduler::release_finished() {
  uint64_t finished = 0, cancelled = 0, failed = 0, unreserved = 0;
  std::erase_if(active_, [&](std::unique_ptr<Seq>& s) {
    if (!s->done) return false;
    if (s->cache != nullptr) {
      s->cache->clear();
      if (options_.mirror != nullptr) options_.mirror->cleared(s->cache.get());
      free_caches_.push_back(std::move(s->cache));
    }
    finished += s->reason != FinishReason::kCancelled && s->reason != FinishReason::kError;
    cancelled += s->reason == FinishReason::kCancelled;
    failed += s->reason == FinishReason::kError;
    unreserved += s->kv_reserved;
    return true;
  });
  while (free_caches_.size() > static_cast<size_t>(options_.max_parallel)) {
    if (options_.mirror != nullptr) options_.mirror->freed(free_caches_.back().get());
    free_caches_.pop_back();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.finished += finished;
    stats_.cancelled += cancelled;
    stats_.failed += failed;
    stats_.kv_reserved_bytes -= unreserved;
    stats_.active = static_cast<int64_t>(active_.size());
    if (active_.empty()) stats_.kv_bytes = 0;
  }
  cv_.notify_all();  // drain() waits for active == 0
}

}  // namespace frugal::serve

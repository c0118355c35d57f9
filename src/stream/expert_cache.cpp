#include "stream/expert_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "core/log.h"
#include "quant/weight.h"

namespace frugal::stream {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<std::unique_ptr<ExpertCache>> ExpertCache::create(const v4::ModelWeights& weights,
                                                         const ExpertCacheOptions& options) {
  if (!weights.streamed_experts) {
    return invalid_argument("expert cache: the model was not loaded with streamed experts");
  }
  std::unique_ptr<ExpertCache> c(new ExpertCache());
  c->weights_ = &weights;
  c->options_ = options;
  c->n_experts_ = static_cast<int32_t>(weights.config.n_routed_experts);
  c->topk_ = static_cast<int32_t>(weights.config.n_activated_experts);
  c->handed_slots_.reserve(static_cast<size_t>(c->n_experts_));  // next() hands out <= a layer
  const int64_t blocks = static_cast<int64_t>(weights.blocks.size());
  const int64_t keys = blocks * c->n_experts_;
  FRUGAL_ASSIGN_OR_RETURN(c->files_, ExpertFiles::open(weights.checkpoint, options.direct_io));
  c->plans_.resize(static_cast<size_t>(keys));
  int64_t located = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const v4::MoeWeights& m = weights.blocks[static_cast<size_t>(b)].ffn;
    for (size_t e = 0; e < m.locations.size(); ++e) {
      if (m.locations[e].w1.weight == nullptr) continue;  // another process's (expert parallel)
      FRUGAL_ASSIGN_OR_RETURN(c->plans_[static_cast<size_t>(b * c->n_experts_) + e],
                              c->files_->plan(m.locations[e]));
      c->slot_bytes_ = std::max(c->slot_bytes_, c->plans_[b * c->n_experts_ + e].slot_bytes);
      ++located;
    }
  }
  if (options.slots < 1) {
    return invalid_argument("expert cache: " + std::to_string(options.slots) +
                            " slots; at least one is needed");
  }
  const int64_t n_slots = std::min<int64_t>(options.slots, located);
  c->slot_bytes_ = (c->slot_bytes_ + kDirectIoAlign - 1) / kDirectIoAlign * kDirectIoAlign;
  FRUGAL_ASSIGN_OR_RETURN(c->buffer_,
                          AlignedBuffer::allocate(static_cast<uint64_t>(n_slots) * c->slot_bytes_,
                                                  &c->memory_, {.alignment = kDirectIoAlign}));
  c->slots_.resize(static_cast<size_t>(n_slots));
  for (int64_t i = 0; i < n_slots; ++i) {
    c->slots_[static_cast<size_t>(i)].data = c->buffer_.data() + i * c->slot_bytes_;
  }
  c->slot_of_.assign(static_cast<size_t>(keys), -1);
  c->scores_.resize(static_cast<size_t>(keys));
  c->checked_.assign(static_cast<size_t>(keys), 0);
  c->hinted_.assign(static_cast<size_t>(blocks), 0);
  c->hint_set_.assign(static_cast<size_t>(blocks),
                      std::vector<uint8_t>(static_cast<size_t>(c->n_experts_), 0));
  if (c->options_.half_life <= 0) c->options_.half_life = 16.0 * static_cast<double>(blocks);
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    c->threads_.emplace_back([p = c.get()] { p->io_loop(); });
  }

  // Pinned experts: read now, kept for good; at most half the slots, so that the recency policy
  // keeps room for what the profile did not foresee (a profile of other text routes otherwise).
  const int64_t pin_limit = std::max<int64_t>(0, std::min(n_slots / 2, n_slots - 2 * c->topk_));
  {
    std::unique_lock lk(c->mu_);
    for (auto [b, e] : options.pinned) {
      if (c->pinned_count_ >= pin_limit) break;
      if (b < 0 || b >= blocks || e < 0 || e >= c->n_experts_) {
        return invalid_argument("expert cache: pinned expert (block " + std::to_string(b) +
                                ", expert " + std::to_string(e) + ") is not in the model");
      }
      const int64_t key = static_cast<int64_t>(b) * c->n_experts_ + e;
      if (c->plans_[static_cast<size_t>(key)].reads.empty() || c->slot_of_[key] >= 0) continue;
      const int32_t s = c->take_slot(true);
      if (s < 0) break;
      c->assign(s, key, true);
      c->slots_[static_cast<size_t>(s)].pinned = true;
      c->slots_[static_cast<size_t>(s)].pins = 0;
      ++c->pinned_count_;
    }
    for (Slot& s : c->slots_) {
      if (!s.pinned) continue;
      c->ready_cv_.wait(
          lk, [&] { return s.state == SlotState::kReady || s.state == SlotState::kFailed; });
      if (s.state == SlotState::kFailed) return s.error;
    }
    c->stats_ = {};
  }
  return c;
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  jobs_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::string ExpertCache::expert_name(int64_t key) const {
  std::string name =
      "block " + std::to_string(key / n_experts_) + " expert " + std::to_string(key % n_experts_);
  const auto& locs = weights_->blocks[static_cast<size_t>(key / n_experts_)].ffn.locations;
  if (static_cast<size_t>(key % n_experts_) < locs.size()) {
    const v4::ExpertLocation& l = locs[static_cast<size_t>(key % n_experts_)];
    name += " (tensors " + l.w1.weight->name + ", " + l.w2.weight->name + ", " + l.w3.weight->name +
            " and their scales)";
  }
  return name;
}

double ExpertCache::score_now(int64_t key) const {
  const Score& s = scores_[static_cast<size_t>(key)];
  return s.value * std::exp2(-static_cast<double>(tick_ - s.tick) / options_.half_life);
}

int32_t ExpertCache::find_slot(bool demand) const {
  // [0]: every other slot; [1]: pending prefetches of exact hints, which a demand read takes only
  // when nothing else is left (they will be used: taking one wastes its read and turns its own
  // use into another demand read, which then takes the next one).
  int32_t best[2] = {-1, -1};
  double best_score[2] = {0, 0};
  uint64_t best_tick[2] = {0, 0};
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.state == SlotState::kEmpty) return static_cast<int32_t>(i);
    if (s.pins > 0 || s.pinned || s.state == SlotState::kReading) continue;
    if (s.state == SlotState::kQueued && !s.prefetched) continue;  // a demand read
    if (!demand && s.prefetched) continue;  // a hint never displaces another hint's read
    const int tier = s.prefetched && s.exact ? 1 : 0;
    const double sc = score_now(s.key);
    const uint64_t t = scores_[static_cast<size_t>(s.key)].tick;
    if (best[tier] < 0 || sc < best_score[tier] ||
        (sc == best_score[tier] && t < best_tick[tier])) {
      best[tier] = static_cast<int32_t>(i);
      best_score[tier] = sc;
      best_tick[tier] = t;
    }
  }
  return best[0] >= 0 ? best[0] : best[1];
}

int32_t ExpertCache::take_slot(bool demand) {
  const int32_t best = find_slot(demand);
  if (best < 0) return -1;
  Slot& s = slots_[static_cast<size_t>(best)];
  if (s.key >= 0) {
    slot_of_[static_cast<size_t>(s.key)] = -1;
    ++stats_.evictions;
  }
  return best;
}

void ExpertCache::assign(int32_t slot, int64_t key, bool demand, bool exact) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.key = key;
  ++s.generation;
  s.state = SlotState::kQueued;
  s.pins = demand ? 1 : 0;
  s.prefetched = !demand;
  s.exact = !demand && exact;
  s.error = ok_status();
  slot_of_[static_cast<size_t>(key)] = slot;
  (demand ? demand_ : prefetch_).push_back({slot, s.generation});
  jobs_cv_.notify_one();
}

void ExpertCache::issue_deferred() {
  while (!deferred_.empty()) {
    const int64_t key = deferred_.front();
    const int32_t slot = take_slot(true);
    if (slot < 0) return;
    deferred_.erase(deferred_.begin());
    assign(slot, key, true);
  }
}

Status ExpertCache::begin_layer(int32_t block, std::span<const int32_t> experts) {
  std::lock_guard lk(mu_);
  if (block < 0 || static_cast<size_t>(block) >= hinted_.size()) {
    return invalid_argument("expert cache: block " + std::to_string(block) + " out of range");
  }
  for (const int32_t e : experts) {  // checked before anything changes
    const int64_t key = static_cast<int64_t>(block) * n_experts_ + e;
    if (e < 0 || e >= n_experts_ || plans_[static_cast<size_t>(key)].reads.empty()) {
      return invalid_argument("expert cache: block " + std::to_string(block) + " expert " +
                              std::to_string(e) + " is not a streamed expert");
    }
  }
  unpin_handed();  // an unfinished layer
  for (size_t i = 0; block_ >= 0 && i < want_.size(); ++i) {
    const int32_t s = slot_of_[static_cast<size_t>(block_) * n_experts_ + want_[i]];
    if (!handed_[i] && s >= 0 && slots_[static_cast<size_t>(s)].pins > 0) --slots_[s].pins;
  }
  ++tick_;
  ++stats_.layers;
  block_ = block;
  want_.assign(experts.begin(), experts.end());
  handed_.assign(want_.size(), 0);
  deferred_.clear();
  const bool hinted = hinted_[static_cast<size_t>(block)] != 0;
  hinted_[static_cast<size_t>(block)] = 0;
  for (const int32_t e : want_) {
    const int64_t key = static_cast<int64_t>(block) * n_experts_ + e;
    ++stats_.requests;
    if (hinted) {
      ++stats_.hinted;
      stats_.hinted_right += hint_set_[static_cast<size_t>(block)][static_cast<size_t>(e)];
    }
    Score& sc = scores_[static_cast<size_t>(key)];
    sc.value = score_now(key) + 1.0;
    sc.tick = tick_;
    const int32_t slot = slot_of_[static_cast<size_t>(key)];
    if (slot < 0) {
      ++stats_.misses;
      deferred_.push_back(key);
      continue;
    }
    Slot& s = slots_[static_cast<size_t>(slot)];
    ++stats_.hits;
    ++s.pins;
    if (s.prefetched) {
      ++stats_.prefetch_used;
      s.prefetched = false;
      s.exact = false;
    }
    if (s.state == SlotState::kQueued) {
      demand_.push_front({slot, s.generation});  // promoted ahead of the prefetches
      jobs_cv_.notify_one();
    } else if (s.state == SlotState::kFailed) {  // read again
      ++s.generation;
      s.state = SlotState::kQueued;
      demand_.push_back({slot, s.generation});
      jobs_cv_.notify_one();
    }
  }
  if (hinted) {
    // Exact hints the block did not ask for (a forward that stopped before it): a read not
    // started yet is dropped (its slot freed), one read or being read stays as a plain cached
    // expert. (A wrong guess of a router stays a prefetch until a demand read evicts it.)
    const std::vector<uint8_t>& set = hint_set_[static_cast<size_t>(block)];
    for (int32_t e = 0; e < n_experts_; ++e) {
      if (!set[static_cast<size_t>(e)]) continue;
      const int64_t key = static_cast<int64_t>(block) * n_experts_ + e;
      const int32_t slot = slot_of_[static_cast<size_t>(key)];
      if (slot < 0 || !slots_[static_cast<size_t>(slot)].exact) continue;
      Slot& s = slots_[static_cast<size_t>(slot)];
      s.prefetched = false;
      s.exact = false;
      if (s.state == SlotState::kQueued) {  // its queued job is now stale
        slot_of_[static_cast<size_t>(key)] = -1;
        s.key = -1;
        s.state = SlotState::kEmpty;
        ++s.generation;
        ++stats_.prefetch_dropped;
      }
    }
  }
  issue_deferred();
  return ok_status();
}

void ExpertCache::unpin_handed() {
  for (const int32_t s : handed_slots_) --slots_[static_cast<size_t>(s)].pins;
  handed_slots_.clear();
}

Result<size_t> ExpertCache::next(std::span<v4::HandedExpert> out) {
  std::unique_lock lk(mu_);
  unpin_handed();
  for (;;) {
    issue_deferred();
    bool done = true;
    int32_t failed = -1;
    size_t picked = 0;
    for (size_t i = 0; i < want_.size() && picked < out.size(); ++i) {
      if (handed_[i]) continue;
      done = false;
      const int32_t s = slot_of_[static_cast<size_t>(block_) * n_experts_ + want_[i]];
      if (s < 0) continue;
      const SlotState st = slots_[static_cast<size_t>(s)].state;
      if (st == SlotState::kReady) {
        handed_[i] = 1;
        handed_slots_.push_back(s);  // capacity reserved at create
        out[picked++] = {want_[i], &slots_[static_cast<size_t>(s)].views};
      } else if (st == SlotState::kFailed && failed < 0) {
        failed = s;
      }
    }
    if (picked > 0) return picked;
    if (done) {
      block_ = -1;
      want_.clear();
      handed_.clear();
      return size_t{0};
    }
    const bool busy = std::any_of(slots_.begin(), slots_.end(), [](const Slot& x) {
      return x.state == SlotState::kQueued || x.state == SlotState::kReading;
    });
    if (failed >= 0 || (!busy && !deferred_.empty())) {  // a failed read, or a slot shortage
      Status err = failed >= 0 ? slots_[static_cast<size_t>(failed)].error
                               : internal_error("expert cache: no slot can be freed for " +
                                                expert_name(deferred_.front()));
      for (size_t i = 0; i < want_.size(); ++i) {  // end the layer: nothing stays pinned
        const int32_t s = slot_of_[static_cast<size_t>(block_) * n_experts_ + want_[i]];
        if (!handed_[i] && s >= 0 && slots_[static_cast<size_t>(s)].pins > 0) --slots_[s].pins;
      }
      if (failed >= 0) {  // the next request reads it again
        Slot& f = slots_[static_cast<size_t>(failed)];
        slot_of_[static_cast<size_t>(f.key)] = -1;
        f.key = -1;
        f.state = SlotState::kEmpty;
        ++f.generation;
      }
      block_ = -1;
      want_.clear();
      handed_.clear();
      deferred_.clear();
      return err;
    }
    const auto t0 = std::chrono::steady_clock::now();
    ready_cv_.wait(lk);
    stats_.wait_seconds += seconds_since(t0);
  }
}

void ExpertCache::hint(int32_t block, std::span<const int32_t> experts, bool exact) {
  std::lock_guard lk(mu_);
  if (block < 0 || static_cast<size_t>(block) >= hinted_.size()) return;
  std::vector<uint8_t>& set = hint_set_[static_cast<size_t>(block)];
  std::fill(set.begin(), set.end(), 0);
  hinted_[static_cast<size_t>(block)] = 1;
  // The layer in progress still waits for slots: its reads come first (the guess is recorded).
  const bool room = deferred_.empty();
  for (const int32_t e : experts) {
    if (e < 0 || e >= n_experts_ || set[static_cast<size_t>(e)]) continue;
    set[static_cast<size_t>(e)] = 1;
    if (!room) continue;
    const int64_t key = static_cast<int64_t>(block) * n_experts_ + e;
    if (slot_of_[static_cast<size_t>(key)] >= 0 || plans_[static_cast<size_t>(key)].reads.empty())
      continue;
    // A guess displaces only a slot worth no more than the guess would be once used: an expert
    // used often lately is not evicted for one that may not come. (An exact hint's expert will
    // come: its demand read would take the same slot.)
    const int32_t victim = find_slot(false);
    if (victim < 0) continue;  // record the rest of the guess
    const Slot& v = slots_[static_cast<size_t>(victim)];
    if (!exact && v.state != SlotState::kEmpty && score_now(v.key) > score_now(key) + 1.0) {
      continue;
    }
    const int32_t slot = take_slot(false);
    assign(slot, key, false, exact);
    ++stats_.prefetch_reads;
  }
}

Status ExpertCache::finish_read(Slot& s, int64_t key) {
  const v4::ExpertLocation& loc =
      weights_->blocks[static_cast<size_t>(key / n_experts_)].ffn.locations[key % n_experts_];
  const ExpertPlan& plan = plans_[static_cast<size_t>(key)];
  auto view = [&](const v4::TensorRef& r, const ExpertPlan::Place& p,
                  quant::WeightView& out) -> Status {
    const std::string what = *r.weight->file + ": " + r.weight->name;
    FRUGAL_ASSIGN_OR_RETURN(
        out, quant::make_weight_view(
                 r.format, r.rows, r.cols, s.data + p.weight, r.weight->size,
                 r.scale ? reinterpret_cast<const uint8_t*>(s.data + p.scale) : nullptr,
                 r.scale ? r.scale->size : 0, what));
    if (!checked_[static_cast<size_t>(key)]) {
      FRUGAL_RETURN_IF_ERROR(quant::check_weight_codes(out, what));
    }
    return ok_status();
  };
  FRUGAL_RETURN_IF_ERROR(view(loc.w1, plan.w1, s.views.w1));
  FRUGAL_RETURN_IF_ERROR(view(loc.w2, plan.w2, s.views.w2));
  FRUGAL_RETURN_IF_ERROR(view(loc.w3, plan.w3, s.views.w3));
  checked_[static_cast<size_t>(key)] = 1;
  return ok_status();
}

void ExpertCache::io_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    jobs_cv_.wait(lk, [&] { return stop_ || !demand_.empty() || !prefetch_.empty(); });
    if (stop_) return;
    std::deque<Job>& q = demand_.empty() ? prefetch_ : demand_;
    const Job job = q.front();
    q.pop_front();
    Slot& s = slots_[static_cast<size_t>(job.slot)];
    if (s.generation != job.generation || s.state != SlotState::kQueued) continue;  // stale
    s.state = SlotState::kReading;
    const int64_t key = s.key;
    const ExpertPlan& plan = plans_[static_cast<size_t>(key)];
    if (recording_) recorded_.push_back(key);
    lk.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    Status st = files_->read(plan, s.data, expert_name(key));
    if (st.ok()) st = finish_read(s, key);
    const double dt = seconds_since(t0);
    lk.lock();
    s.state = st.ok() ? SlotState::kReady : SlotState::kFailed;
    if (!st.ok()) s.error = st.with_context("reading " + expert_name(key));
    ++stats_.reads;
    stats_.bytes_read += plan.slot_bytes;
    stats_.read_seconds += dt;
    ready_cv_.notify_all();
  }
}

ExpertCacheStats ExpertCache::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void ExpertCache::reset_stats() {
  std::lock_guard lk(mu_);
  stats_ = {};
}

void ExpertCache::record_reads(bool on) {
  std::lock_guard lk(mu_);
  recording_ = on;
}

Result<ReadReplay> ExpertCache::replay_reads() {
  std::vector<int64_t> keys;
  {
    std::lock_guard lk(mu_);
    keys.swap(recorded_);
  }
  ReadReplay r;
  if (keys.empty()) return r;
  r.threads = static_cast<int>(
      std::min<size_t>(static_cast<size_t>(std::max(1, options_.io_threads)), keys.size()));
  MemoryStats mem;
  FRUGAL_ASSIGN_OR_RETURN(AlignedBuffer buf,
                          AlignedBuffer::allocate(static_cast<uint64_t>(r.threads) * slot_bytes_,
                                                  &mem, {.alignment = kDirectIoAlign}));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  Status err = ok_status();
  auto worker = [&](int t) {
    std::byte* dst = buf.data() + static_cast<uint64_t>(t) * slot_bytes_;
    for (size_t i = next.fetch_add(1); i < keys.size(); i = next.fetch_add(1)) {
      Status s = files_->read(plans_[static_cast<size_t>(keys[i])], dst,
                              "replayed read of " + expert_name(keys[i]));
      if (!s.ok()) {
        std::lock_guard lk(err_mu);
        if (err.ok()) err = std::move(s);
        next = keys.size();
        return;
      }
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 1; t < r.threads; ++t) workers.emplace_back(worker, t);
  worker(0);
  for (std::thread& w : workers) w.join();
  r.seconds = seconds_since(t0);
  FRUGAL_RETURN_IF_ERROR(err);
  r.reads = keys.size();
  for (const int64_t k : keys) r.bytes += plans_[static_cast<size_t>(k)].slot_bytes;
  return r;
}

}  // namespace frugal::stream

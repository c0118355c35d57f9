// frugal bench --batch N: the batched decode timing (bench_batch.h).
#include "cli/bench_batch.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "engine/probes.h"

namespace frugal::cli {

Result<double> time_batched_decode(engine::Engine& eng, std::span<const int32_t> prompt,
                                   int64_t gen, int64_t batch, int reps) {
  const int64_t v = eng.config().vocab_size;
  std::vector<std::unique_ptr<kv::V4SequenceCache>> caches;
  for (int64_t q = 0; q < batch; ++q) {
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> c, eng.new_cache());
    caches.push_back(std::move(c));
  }
  std::vector<float> logits(static_cast<size_t>(batch * v));
  std::vector<int32_t> next(static_cast<size_t>(batch));
  std::vector<v4::BatchEntry> entries(static_cast<size_t>(batch));
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch));
  for (int64_t q = 0; q < batch; ++q) {
    for (int32_t id : prompt) prompts[q].push_back(static_cast<int32_t>((id + 7919 * q) % v));
  }
  std::vector<double> tps;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    for (int64_t q = 0; q < batch; ++q) {
      caches[q]->clear();
      const std::span<float> lq(logits.data() + q * v, v);
      FRUGAL_RETURN_IF_ERROR(eng.model().forward(*caches[q], {.ids = prompts[q], .logits = lq}));
      next[q] = static_cast<int32_t>(std::max_element(lq.begin(), lq.end()) - lq.begin());
      entries[q] = {.cache = caches[q].get(), .ids = std::span(&next[q], 1), .logits = lq};
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < gen; ++i) {
      FRUGAL_RETURN_IF_ERROR(eng.model().forward_batch(entries));
      for (int64_t q = 0; q < batch; ++q) {
        const float* lq = logits.data() + q * v;
        next[q] = static_cast<int32_t>(std::max_element(lq, lq + v) - lq);
      }
    }
    tps.push_back(static_cast<double>(gen * batch) /
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return engine::median(tps);
}

}  // namespace frugal::cli

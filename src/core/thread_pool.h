// A persistent pool of worker threads owned by the engine (never a global).
//
// parallel_for splits [0, n) into contiguous chunks, runs them on the caller plus the workers, and
// returns when all are done. No allocation per call; the caller's thread takes part, so a pool of
// N threads has N - 1 workers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace frugal {

struct ThreadPoolOptions {
  int n_threads = 0;              // 0: one per core the process may run on (sched_getaffinity)
  bool pin = false;               // pin thread i to the i-th allowed core
};

class ThreadPool {
 public:
  static Result<std::unique_ptr<ThreadPool>> create(const ThreadPoolOptions& options);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const;

  // fn(begin, end, thread_index) over chunks of [0, n), each at least `grain` long.
  // fn must not throw. Calls from inside fn run serially on the calling thread.
  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  void parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx);

  // Convenience for lambdas; the lambda is called by reference, nothing is allocated.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& f) {
    using Fn = std::remove_reference_t<F>;
    parallel_for(
        n, grain,
        [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

  struct Impl;

 private:
  explicit ThreadPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace frugal

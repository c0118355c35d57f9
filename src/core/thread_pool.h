// A persistent pool of worker threads owned by the engine (never a global).
//
// parallel_for splits [0, n) into contiguous chunks, runs them on the caller plus the workers, and
// returns when all are done. No allocation per call; the caller's thread takes part, so a pool of
// N threads has N - 1 workers. Decode calls it thousands of times per token, so dispatch is a few
// atomics: the caller publishes the job, wakes sleeping workers only if there are any, and every
// thread (caller included) claims chunks from a shared counter until none are left. A worker that
// is slow to wake therefore never delays the call: the others take its chunks.
//
// Sharing the cores with other thread pools (oneDNN's OpenMP team, libgomp), see the "Threads"
// section of docs/ARCHITECTURE.md:
//   - Our workers spin for at most `spin_us` after a call, then sleep in the kernel (futex via
//     std::atomic::wait), so an idle pool costs no CPU and an OpenMP region started right after
//     a parallel_for gets the cores back within spin_us.
//   - The two never run at the same time: a library call that uses OpenMP is made from the
//     caller's thread outside any parallel_for, and the engine sets the OpenMP team size to our
//     n_threads (omp_set_num_threads / OMP_NUM_THREADS) with OMP_WAIT_POLICY=passive, so its
//     threads sleep as soon as a region ends instead of spinning on our cores.
//   - Pinning (pin = true) pins the workers only, worker i to the i-th allowed CPU (i >= 1),
//     leaving CPU 0 of the allowed set to the caller. The caller's thread is never pinned: it
//     belongs to the application, and threads it creates later (libgomp's team) inherit its
//     affinity mask, which would squeeze a whole OpenMP team onto one core.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace frugal {

inline constexpr int kMaxThreads = 1024;

struct ThreadPoolOptions {
  int n_threads = 0;  // 0: one per CPU the process may run on (sched_getaffinity); 1..kMaxThreads
  bool pin = false;   // pin worker i to the i-th allowed CPU; needs n_threads <= allowed CPUs
  int spin_us = 50;   // how long an idle worker polls for the next call before sleeping; >= 0
};

class ThreadPool {
 public:
  // Starts the workers. Errors (invalid_argument): n_threads or spin_us out of range, pinning
  // more threads than allowed CPUs; resource_exhausted when a thread cannot be started; io_error
  // when the OS refuses the affinity.
  static Result<std::unique_ptr<ThreadPool>> create(const ThreadPoolOptions& options);
  ~ThreadPool();  // stops and joins the workers; no parallel_for may be running
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const;
  // The thread count n_threads = 0 gives: the CPUs this process may run on (at least 1).
  static int default_threads();

  // fn(ctx, begin, end, thread) over chunks of [0, n) that cover it exactly once. Each chunk is
  // at least `grain` long (a single chunk [0, n) when n < 2 * grain); grain < 1 counts as 1.
  // The chunk boundaries depend only on (n, grain, n_threads), never on timing, so per-chunk
  // results are reproducible; which thread runs a chunk is not. `thread` is in [0, n_threads)
  // and unique among the threads running at one time: index per-thread scratch with it.
  //
  // fn must not throw. A call made from inside fn (on any pool's thread) runs serially on the
  // calling thread as one chunk [0, n) with that thread's index, so nested parallelism cannot
  // deadlock. Calls from two threads outside the pool at once are a bug (checked).
  using RangeFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread);
  void parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx);

  // Convenience for lambdas; the lambda is called by reference, nothing is allocated.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& f) {
    using Fn = std::remove_reference_t<F>;
    parallel_for(
        n, grain, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

  struct Impl;

 private:
  explicit ThreadPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace frugal

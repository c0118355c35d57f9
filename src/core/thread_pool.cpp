#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>

namespace frugal {
namespace {

// Chunks per thread: enough that a late or preempted thread's share is picked up by the others
// (the machines are shared and noisy), few enough that claiming them stays cheap.
constexpr int64_t kChunksPerThread = 4;

// The index of this thread in the pool whose work it runs (0 for any thread outside a pool), and
// whether it is inside a parallel_for body, where nested calls run serially.
thread_local int t_thread_index = 0;
thread_local bool t_in_region = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Polls `done()` for up to spin_us microseconds; true if it became true. Reading the clock only
// every 64 polls keeps the loop a load and a pause.
template <typename Pred>
bool spin_until(Pred done, int spin_us) {
  if (done()) return true;
  if (spin_us <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  for (uint32_t i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

constexpr uint64_t pack_ticket(uint32_t next, uint32_t count) {
  return (static_cast<uint64_t>(count) << 32) | next;
}

}  // namespace

struct ThreadPool::Impl {
  int n_threads = 1;
  int spin_us = 0;
  std::vector<std::thread> workers;

  // The current job. The caller writes these before it publishes `ticket` (release); a thread
  // reads them only after it has claimed a chunk through `ticket` (acquire), and the caller does
  // not write them again until every chunk is done, so the plain fields never race.
  RangeFn fn = nullptr;
  void* ctx = nullptr;
  int64_t n = 0;

  // Low 32 bits: the next chunk to claim; high 32 bits: the job's chunk count. Claiming is a CAS
  // from (i, c) to (i + 1, c). A thread holding a stale value from an earlier job can only
  // succeed if the current job's ticket has the very same value, and then the chunk it claims is
  // an unclaimed chunk of the current job, so no generation tag is needed.
  alignas(64) std::atomic<uint64_t> ticket{0};
  alignas(64) std::atomic<uint32_t> done{0};  // chunks finished in the current job
  alignas(64) std::atomic<uint32_t> wake{0};  // bumped per job and at stop; workers sleep on it
  alignas(64) std::atomic<int> sleepers{0};   // workers in (or entering) wake.wait
  std::atomic<bool> caller_waiting{false};    // the caller is in (or entering) done.wait
  std::atomic<bool> stop{false};
  std::atomic<bool> busy{false};  // a parallel_for is in flight (catches concurrent callers)

  // Claims and runs chunks of whatever job is current until none is left.
  void run_chunks(int thread) {
    uint64_t t = ticket.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t next = static_cast<uint32_t>(t);
      const uint32_t count = static_cast<uint32_t>(t >> 32);
      if (next >= count) return;
      if (!ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        continue;  // t now holds the current value
      }
      // Chunk `next` of `count` near-equal contiguous chunks (sizes differ by at most one).
      const int64_t base = n / count;
      const int64_t rem = n % count;
      const int64_t begin = next * base + std::min<int64_t>(next, rem);
      const int64_t end = begin + base + (next < rem ? 1 : 0);
      fn(ctx, begin, end, thread);
      // seq_cst pairs with the caller's store to caller_waiting (Dekker): either we see it and
      // notify, or the caller's later load of `done` sees our increment.
      if (done.fetch_add(1, std::memory_order_seq_cst) + 1 == count &&
          caller_waiting.load(std::memory_order_seq_cst)) {
        done.notify_one();
      }
      t = ticket.load(std::memory_order_acquire);
    }
  }

  void worker_main(int thread) {
    t_thread_index = thread;
    t_in_region = true;  // everything a worker runs is inside a parallel_for body
    uint32_t seen = wake.load(std::memory_order_acquire);
    for (;;) {
      if (stop.load(std::memory_order_acquire)) return;
      run_chunks(thread);
      const bool woke =
          spin_until([&] { return wake.load(std::memory_order_acquire) != seen; }, spin_us);
      if (!woke) {
        // seq_cst pairs with the caller's wake increment and sleepers load (Dekker): either the
        // caller sees us counted and notifies, or we see its increment and do not sleep.
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        while (wake.load(std::memory_order_seq_cst) == seen) wake.wait(seen);
        sleepers.fetch_sub(1, std::memory_order_seq_cst);
      }
      seen = wake.load(std::memory_order_acquire);
    }
  }

  void wait_done(uint32_t count) {
    if (spin_until([&] { return done.load(std::memory_order_acquire) == count; }, spin_us)) return;
    caller_waiting.store(true, std::memory_order_seq_cst);
    for (uint32_t d; (d = done.load(std::memory_order_seq_cst)) != count;) done.wait(d);
    caller_waiting.store(false, std::memory_order_relaxed);
  }

  void shutdown() {
    stop.store(true, std::memory_order_seq_cst);
    wake.fetch_add(1, std::memory_order_seq_cst);
    wake.notify_all();
    for (std::thread& w : workers) w.join();
    workers.clear();
  }
};

ThreadPool::ThreadPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ThreadPool::~ThreadPool() {
  if (impl_) impl_->shutdown();
}

int ThreadPool::n_threads() const { return impl_->n_threads; }

int ThreadPool::default_threads() {
  cpu_set_t allowed_set;
  CPU_ZERO(&allowed_set);
  if (sched_getaffinity(0, sizeof allowed_set, &allowed_set) != 0) return 1;
  return std::max(1, CPU_COUNT(&allowed_set));
}

Result<std::unique_ptr<ThreadPool>> ThreadPool::create(const ThreadPoolOptions& options) {
  cpu_set_t allowed_set;
  CPU_ZERO(&allowed_set);
  if (sched_getaffinity(0, sizeof allowed_set, &allowed_set) != 0) {
    return io_error(std::string("sched_getaffinity failed: ") + std::strerror(errno));
  }
  std::vector<int> cpus;  // the CPUs this process may run on, ascending
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed_set)) cpus.push_back(c);
  }
  if (cpus.empty()) cpus.push_back(0);  // cannot happen on Linux; keeps n_threads >= 1

  if (options.n_threads < 0 || options.n_threads > kMaxThreads) {
    return invalid_argument("thread count " + std::to_string(options.n_threads) +
                            " out of range: use 0 (one per allowed CPU, here " +
                            std::to_string(cpus.size()) + ") to " + std::to_string(kMaxThreads));
  }
  if (options.spin_us < 0 || options.spin_us > 1'000'000) {
    return invalid_argument("spin_us " + std::to_string(options.spin_us) +
                            " out of range [0, 1000000]");
  }
  const int n = options.n_threads == 0 ? static_cast<int>(cpus.size()) : options.n_threads;
  if (options.pin && n > static_cast<int>(cpus.size())) {
    return invalid_argument("cannot pin " + std::to_string(n) +
                            " threads: the process may run on " + std::to_string(cpus.size()) +
                            " CPUs");
  }

  auto impl = std::make_unique<Impl>();
  impl->n_threads = n;
  impl->spin_us = options.spin_us;
  Impl* raw = impl.get();
  // Own the pool before starting threads, so any error below stops and joins those started.
  std::unique_ptr<ThreadPool> pool(new ThreadPool(std::move(impl)));
  raw->workers.reserve(static_cast<size_t>(n - 1));
  for (int i = 1; i < n; ++i) {
    try {
      raw->workers.emplace_back([raw, i] { raw->worker_main(i); });
    } catch (const std::system_error& e) {
      return resource_exhausted("cannot start worker thread " + std::to_string(i) + " of " +
                                std::to_string(n) + ": " + e.what());
    }
    if (options.pin) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[static_cast<size_t>(i)], &one);
      const int err = pthread_setaffinity_np(raw->workers.back().native_handle(), sizeof one, &one);
      if (err != 0) {
        return io_error("cannot pin worker thread " + std::to_string(i) + " to CPU " +
                        std::to_string(cpus[static_cast<size_t>(i)]) + ": " + std::strerror(err));
      }
    }
  }
  return pool;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  Impl& p = *impl_;
  if (grain < 1) grain = 1;
  const int64_t chunks = std::clamp<int64_t>(n / grain, 1, p.n_threads * kChunksPerThread);
  if (t_in_region || chunks == 1 || p.n_threads == 1) {
    // Nested call, or nothing to split: run here, keeping this thread's index.
    const bool outer = t_in_region;
    t_in_region = true;
    fn(ctx, 0, n, t_thread_index);
    t_in_region = outer;
    return;
  }
  bool idle = false;
  FRUGAL_CHECK_MSG(p.busy.compare_exchange_strong(idle, true, std::memory_order_acquire),
                   "ThreadPool::parallel_for called from two threads at once");
  p.fn = fn;
  p.ctx = ctx;
  p.n = n;
  p.done.store(0, std::memory_order_relaxed);
  p.ticket.store(pack_ticket(0, static_cast<uint32_t>(chunks)), std::memory_order_release);
  p.wake.fetch_add(1, std::memory_order_seq_cst);
  if (p.sleepers.load(std::memory_order_seq_cst) > 0) p.wake.notify_all();

  t_in_region = true;
  p.run_chunks(0);
  t_in_region = false;
  p.wait_done(static_cast<uint32_t>(chunks));
  p.busy.store(false, std::memory_order_release);
}

}  // namespace frugal

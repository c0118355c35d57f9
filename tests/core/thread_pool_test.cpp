#include "core/thread_pool.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

namespace frugal {
namespace {

std::unique_ptr<ThreadPool> make_pool(int n, bool pin = false, int spin_us = 50) {
  auto r = ThreadPool::create({.n_threads = n, .pin = pin, .spin_us = spin_us});
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  return CPU_COUNT(&set);
}

// Runs parallel_for and checks every index is visited exactly once, chunks respect the grain,
// thread indices are in range, and returns the sum of the indices.
int64_t checked_sum(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
  std::atomic<int64_t> sum{0};
  std::atomic<int64_t> chunks{0};
  std::atomic<bool> bad_thread{false}, short_chunk{false};
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int t) {
    if (t < 0 || t >= pool.n_threads()) bad_thread = true;
    if (e - b < std::max<int64_t>(grain, 1) && !(b == 0 && e == n)) short_chunk = true;
    int64_t s = 0;
    for (int64_t i = b; i < e; ++i) {
      visits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
      s += i;
    }
    sum += s;
    ++chunks;
  });
  EXPECT_FALSE(bad_thread);
  EXPECT_FALSE(short_chunk) << "n " << n << " grain " << grain;
  EXPECT_LE(chunks.load(), std::max<int64_t>(1, 4 * pool.n_threads()));
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(visits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << n;
  }
  return sum.load();
}

TEST(ThreadPool, SumsOverRangesVisitEachIndexOnce) {
  for (int threads : {1, 2, 3, 4, 8}) {
    auto pool = make_pool(threads);
    ASSERT_NE(pool, nullptr);
    EXPECT_EQ(pool->n_threads(), threads);
    for (int64_t n : {1, 2, 3, 7, 64, 100, 1000, 12345}) {
      for (int64_t grain : {-1, 0, 1, 3, 16, 1000, 100000}) {
        EXPECT_EQ(checked_sum(*pool, n, grain), n * (n - 1) / 2)
            << threads << " threads, n " << n << ", grain " << grain;
      }
    }
  }
}

TEST(ThreadPool, EmptyAndNegativeRangesDoNothing) {
  auto pool = make_pool(2);
  int calls = 0;
  pool->parallel_for(0, 1, [&](int64_t, int64_t, int) { ++calls; });
  pool->parallel_for(-5, 1, [&](int64_t, int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ChunkBoundariesDependOnlyOnSizes) {
  auto pool = make_pool(3);
  auto boundaries = [&] {
    std::vector<std::atomic<int64_t>> ends(1000);
    for (auto& e : ends) e = -1;
    pool->parallel_for(1000, 10, [&](int64_t b, int64_t e, int) { ends[b] = e; });
    std::vector<int64_t> out;
    for (auto& e : ends) out.push_back(e.load());
    return out;
  };
  const auto first = boundaries();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(boundaries(), first);
  EXPECT_EQ(std::count_if(first.begin(), first.end(), [](int64_t e) { return e >= 0; }), 12);
}

TEST(ThreadPool, ManyCallsInARow) {
  // Decode-like: thousands of short calls; exercises the spin/sleep hand-off both ways.
  for (int spin_us : {0, 50}) {
    auto pool = make_pool(4, false, spin_us);
    std::vector<int64_t> acc(64, 0);
    for (int rep = 0; rep < 3000; ++rep) {
      pool->parallel_for(64, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) acc[static_cast<size_t>(i)] += i;
      });
    }
    for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(acc[static_cast<size_t>(i)], 3000 * i);
  }
}

TEST(ThreadPool, NestedCallsRunSerially) {
  auto pool = make_pool(4);
  std::vector<std::atomic<int>> visits(40 * 50);
  std::atomic<bool> nested_elsewhere{false};
  pool->parallel_for(40, 1, [&](int64_t b, int64_t e, int outer_thread) {
    const auto me = std::this_thread::get_id();
    for (int64_t i = b; i < e; ++i) {
      int inner_calls = 0;
      pool->parallel_for(50, 1, [&](int64_t ib, int64_t ie, int inner_thread) {
        ++inner_calls;
        if (std::this_thread::get_id() != me || inner_thread != outer_thread || ib != 0 ||
            ie != 50) {
          nested_elsewhere = true;
        }
        for (int64_t j = ib; j < ie; ++j) visits[static_cast<size_t>(i * 50 + j)]++;
      });
      if (inner_calls != 1) nested_elsewhere = true;
    }
  });
  EXPECT_FALSE(nested_elsewhere);
  for (auto& v : visits) EXPECT_EQ(v.load(), 1);
}

TEST(ThreadPool, ThreadIndicesAreExclusive) {
  // Per-thread scratch indexed by `thread` must never be used by two threads at once.
  auto pool = make_pool(4);
  std::vector<std::atomic<int>> in_use(4);
  std::atomic<bool> clash{false};
  for (int rep = 0; rep < 200; ++rep) {
    pool->parallel_for(256, 1, [&](int64_t, int64_t, int t) {
      if (in_use[static_cast<size_t>(t)].fetch_add(1) != 0) clash = true;
      std::this_thread::yield();  // widen the window in which a clash would show
      in_use[static_cast<size_t>(t)].fetch_sub(1);
    });
  }
  EXPECT_FALSE(clash);
}

TEST(ThreadPool, DefaultAndPinnedCreation) {
  const int cpus = allowed_cpus();
  auto def = make_pool(0);
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->n_threads(), cpus);
  auto pinned = make_pool(cpus, true);
  ASSERT_NE(pinned, nullptr);
  EXPECT_EQ(checked_sum(*pinned, 5000, 7), int64_t{5000} * 4999 / 2);
  // Workers run on exactly one CPU each; the caller's own affinity is left alone.
  std::atomic<bool> worker_not_pinned{false};
  pinned->parallel_for(1 << 16, 1, [&](int64_t, int64_t, int t) {
    if (t == 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof set, &set);
    if (CPU_COUNT(&set) != 1) worker_not_pinned = true;
  });
  EXPECT_FALSE(worker_not_pinned);
  EXPECT_EQ(allowed_cpus(), cpus);
}

TEST(ThreadPool, BadOptionsAreErrors) {
  const int cpus = allowed_cpus();
  struct Case {
    ThreadPoolOptions options;
    const char* what;
  };
  const Case cases[] = {
      {{.n_threads = -1}, "thread count -1"},
      {{.n_threads = kMaxThreads + 1}, "thread count 1025"},
      {{.n_threads = cpus + 1, .pin = true}, "cannot pin"},
      {{.n_threads = 2, .spin_us = -3}, "spin_us -3"},
  };
  for (const Case& c : cases) {
    auto r = ThreadPool::create(c.options);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.what), std::string::npos) << r.status().message();
  }
  // More threads than CPUs is allowed when not pinning (oversubscription).
  auto over = make_pool(cpus + 2);
  ASSERT_NE(over, nullptr);
  EXPECT_EQ(checked_sum(*over, 999, 1), int64_t{999} * 998 / 2);
}

// Not a timed assertion: prints the cost of one parallel_for with trivial work, for the record.
TEST(ThreadPool, ReportDispatchLatency) {
  const int cpus = std::max(2, allowed_cpus());
  auto pool = make_pool(cpus);
  std::atomic<int64_t> sink{0};
  auto body = [&](int64_t b, int64_t e, int) { sink.fetch_add(e - b, std::memory_order_relaxed); };
  constexpr int kCalls = 2000;
  std::vector<double> per_call_ns;
  for (int round = 0; round < 7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) pool->parallel_for(4 * cpus, 1, body);
    const auto t1 = std::chrono::steady_clock::now();
    per_call_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kCalls);
  }
  std::sort(per_call_ns.begin(), per_call_ns.end());
  EXPECT_EQ(sink.load(), int64_t{7} * kCalls * 4 * cpus);
  std::printf("parallel_for dispatch, %d threads, trivial body: median %.0f ns/call (min %.0f)\n",
              cpus, per_call_ns[per_call_ns.size() / 2], per_call_ns.front());
}

}  // namespace
}  // namespace frugal

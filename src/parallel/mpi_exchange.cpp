// v4::Exchange over MPI (docs/PARALLEL.md).
//
// - Expert rows: the processes of a stage hold contiguous expert ranges, and the MoE layer keeps
//   its rows sorted by expert, so process j's rows are one contiguous range of the row buffer:
//   one in-place MPI_Allgatherv over the stage's communicator fills in the rest. Each process
//   receives the rows of the other processes' experts: (1 - 1/E) of n_activated_experts rows of
//   dim floats per token per MoE layer on average.
// - Streams: point to point between the process of the same expert rank in adjacent stages
//   (every process of a stage holds the same streams).
// - Outputs: MPI_Bcast over the world from the first process of the last stage.
//
// Every transfer is non-blocking and waited for with a deadline (FRUGAL_PARALLEL_TIMEOUT_S, 600 s
// by default): a process stuck without dying (a hung disk, a stopped process) would otherwise
// leave the others in the collective forever; past the deadline the waiting process stops the
// run, naming what it waited for. MPI counts are int: a call larger than INT_MAX floats (8 GiB)
// is split, never truncated.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "parallel/world.h"

namespace frugal::parallel {
namespace {

using Clock = std::chrono::steady_clock;

// How long a process waits for the others in one exchange before it decides one of them is stuck
// and stops the run (MPI has no timeouts of its own; a process that dies is seen by mpirun
// instead). Long enough for the slowest honest step (a span's MoE layer on a slow machine):
// FRUGAL_PARALLEL_TIMEOUT_S overrides it.
double exchange_timeout_seconds() {
  const char* v = std::getenv("FRUGAL_PARALLEL_TIMEOUT_S");
  const double s = v != nullptr ? std::atof(v) : 0.0;
  return s > 0 ? s : 600.0;
}

class MpiExchange final : public v4::Exchange {
 public:
  explicit MpiExchange(const v4::Shard& shard) : shard_(shard) {
    MPI_Comm_split(MPI_COMM_WORLD, shard.stage, shard.expert_rank, &stage_comm_);
    counts_.resize(static_cast<size_t>(shard.expert_ranks));
    displs_.resize(static_cast<size_t>(shard.expert_ranks));
  }
  ~MpiExchange() override { MPI_Comm_free(&stage_comm_); }

  const v4::Shard& shard() const override { return shard_; }

  Status gather_expert_rows(int32_t block, float* rows, std::span<const int32_t> eoff,
                            int64_t width) override {
    const auto t0 = Clock::now();
    const int32_t E = shard_.expert_ranks;
    const int64_t total_rows = eoff.back();
    if (total_rows * width > INT_MAX) {
      return out_of_range("block " + std::to_string(block) + ": " + std::to_string(total_rows) +
                          " expert rows of " + std::to_string(width) +
                          " floats exceed one MPI call (INT_MAX elements): use a smaller span");
    }
    for (int32_t j = 0; j < E; ++j) {
      const int64_t first = eoff[static_cast<size_t>(shard_.expert_begin(j))];
      const int64_t end = eoff[static_cast<size_t>(shard_.expert_begin(j + 1))];
      counts_[static_cast<size_t>(j)] = static_cast<int>((end - first) * width);
      displs_[static_cast<size_t>(j)] = static_cast<int>(first * width);
    }
    MPI_Request req;
    if (MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows, counts_.data(), displs_.data(),
                        MPI_FLOAT, stage_comm_, &req) != MPI_SUCCESS) {
      return io_error("block " + std::to_string(block) + ": MPI_Iallgatherv of the expert rows");
    }
    wait(&req, [&] { return "the expert rows of block " + std::to_string(block); });
    const int64_t own = counts_[static_cast<size_t>(shard_.expert_rank)];
    stats_.gathers += 1;
    stats_.gather_bytes_in += static_cast<uint64_t>(total_rows * width - own) * sizeof(float);
    stats_.gather_rows += static_cast<uint64_t>(total_rows);
    stats_.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return ok_status();
  }

  Status receive_streams(float* x, int64_t floats) override {
    const auto t0 = Clock::now();
    const int from = shard_.rank - shard_.expert_ranks;
    FRUGAL_RETURN_IF_ERROR(pieces(x, floats, [&](float* p, int n) {
      MPI_Request req;
      const int rc = MPI_Irecv(p, n, MPI_FLOAT, from, kStreamTag, MPI_COMM_WORLD, &req);
      if (rc == MPI_SUCCESS)
        wait(&req, [&] { return "the streams of rank " + std::to_string(from); });
      return rc;
    }));
    stats_.stream_bytes_in += static_cast<uint64_t>(floats) * sizeof(float);
    stats_.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return ok_status();
  }

  Status send_streams(const float* x, int64_t floats) override {
    const auto t0 = Clock::now();
    const int to = shard_.rank + shard_.expert_ranks;
    FRUGAL_RETURN_IF_ERROR(pieces(const_cast<float*>(x), floats, [&](float* p, int n) {
      MPI_Request req;
      const int rc = MPI_Isend(p, n, MPI_FLOAT, to, kStreamTag, MPI_COMM_WORLD, &req);
      if (rc == MPI_SUCCESS) {
        wait(&req, [&] { return "rank " + std::to_string(to) + " to take the streams"; });
      }
      return rc;
    }));
    stats_.stream_bytes_out += static_cast<uint64_t>(floats) * sizeof(float);
    stats_.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return ok_status();
  }

  Status share_outputs(std::span<float> out) override {
    if (out.empty()) return ok_status();
    const auto t0 = Clock::now();
    const int root = (shard_.stages - 1) * shard_.expert_ranks;
    FRUGAL_RETURN_IF_ERROR(
        pieces(out.data(), static_cast<int64_t>(out.size()), [&](float* p, int n) {
          MPI_Request req;
          const int rc = MPI_Ibcast(p, n, MPI_FLOAT, root, MPI_COMM_WORLD, &req);
          if (rc == MPI_SUCCESS) {
            wait(&req, [&] { return "the outputs of rank " + std::to_string(root); });
          }
          return rc;
        }));
    if (shard_.rank != root) stats_.output_bytes_in += out.size() * sizeof(float);
    stats_.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    return ok_status();
  }

  [[noreturn]] void abort(const Status& st) override {
    std::fprintf(diagnostics(), "frugal: rank %d: error: %s (stopping every process of the run)\n",
                 shard_.rank, st.message().c_str());
    std::fflush(diagnostics());
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();  // MPI_Abort does not return
  }

  ExchangeStats stats_;

 private:
  // Completes `req`, or stops the run once timeout_ has passed, naming what(): what this process
  // was waiting for. Spins first (a decode step's gather takes microseconds), then yields.
  template <typename What>
  void wait(MPI_Request* req, What&& what) {
    int done = 0;
    const auto t0 = Clock::now();
    for (uint64_t spins = 0;; ++spins) {
      MPI_Test(req, &done, MPI_STATUS_IGNORE);
      if (done != 0) return;
      if ((spins & 1023) != 1023) continue;
      const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
      if (waited > timeout_) {
        abort(io_error("waited " + std::to_string(static_cast<int64_t>(waited)) + " s for " +
                       what() + " (FRUGAL_PARALLEL_TIMEOUT_S): another process is stuck"));
      }
      if (waited > 1e-3) std::this_thread::yield();
    }
  }

  const double timeout_ = exchange_timeout_seconds();
  static constexpr int kStreamTag = 15;

  // One MPI call per INT_MAX floats.
  template <typename F>
  Status pieces(float* p, int64_t floats, F&& call) {
    for (int64_t done = 0; done < floats;) {
      const int n = static_cast<int>(std::min<int64_t>(floats - done, INT_MAX));
      if (call(p + done, n) != MPI_SUCCESS) {
        return io_error("rank " + std::to_string(shard_.rank) + ": an MPI transfer failed");
      }
      done += n;
    }
    return ok_status();
  }

  v4::Shard shard_;
  MPI_Comm stage_comm_ = MPI_COMM_NULL;
  std::vector<int> counts_, displs_;
};

}  // namespace

Result<std::unique_ptr<v4::Exchange>> create_exchange(const v4::Shard& shard) {
  if (world_size() != shard.ranks) {
    return invalid_argument("parallel: the shard is for " + std::to_string(shard.ranks) +
                            " processes, the run has " + std::to_string(world_size()));
  }
  return std::unique_ptr<v4::Exchange>(new MpiExchange(shard));
}

ExchangeStats exchange_stats(const v4::Exchange& exchange) {
  const auto* m = dynamic_cast<const MpiExchange*>(&exchange);
  return m != nullptr ? m->stats_ : ExchangeStats{};
}

void reset_exchange_stats(v4::Exchange& exchange) {
  auto* m = dynamic_cast<MpiExchange*>(&exchange);
  if (m != nullptr) m->stats_ = {};
}

}  // namespace frugal::parallel

// The processes of a parallel run (docs/PARALLEL.md). `mpirun -np N frugal ...` starts N copies
// of the same command; each initializes MPI once (World::start, from main) and runs the same front
// end, rank 0 alone talking to the user. Without mpirun (or in a build without MPI) there is one
// process and nothing here does anything.
#pragma once

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/v4/exchange.h"
#include "model/v4/shard.h"

namespace frugal::parallel {

// Whether this build can run in parallel (it was linked with MPI).
bool built_with_mpi();
// Whether an MPI launcher started this process (Open MPI's OMPI_COMM_WORLD_SIZE, or PMIx / PMI
// variables): only then is MPI initialized.
bool launched_by_mpi();

// The running world: rank 0 of 1 before World::start or without MPI.
int world_rank();
int world_size();
// The run's processes on this machine (those that share its memory): 1 without MPI. A collective
// (MPI_Comm_split_type): every process calls it.
int processes_on_this_machine();

// Where a process writes what only it can say (its share at start-up, an error of its own): the
// standard error of rank 0 and of a single process; on the other ranks of a parallel run, whose
// standard output and error World::start sends to /dev/null (they would repeat rank 0's), a copy
// of the original standard error. Set once at start-up, like the log level.
std::FILE* diagnostics();

// Owns MPI's initialization: created first thing in main, finalized when it goes away.
class World {
 public:
  // Initializes MPI when launched by mpirun (threads: serialized; the model calls MPI from the
  // thread that runs the forward pass, one at a time) and quiets the standard output and error of
  // ranks other than 0 (see diagnostics()). An error when MPI refuses.
  static Result<std::unique_ptr<World>> start(int* argc, char*** argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // The end of a command on every process: agrees on how it ended without hanging. When every
  // process finishes within `wait_seconds`, rank 0 prints its own error (if any) and every
  // other process prints only an error that differs from rank 0's, so an error that all of them
  // hit (a bad flag, a shard that did not load) appears once. A process whose peers do not
  // finish (one of them is stuck in a collective this one will never enter) prints its error
  // with its rank and stops the run. Returns whether this process should print `st` itself.
  bool finish(const Status& st, double wait_seconds);

 private:
  World() = default;
  bool initialized_ = false;
  int rank_ = 0;
  int size_ = 1;
};

// Rank 0's line of input (chat reads standard input, which mpirun gives to rank 0 alone) handed
// to every process: on rank 0 `line` and `more` (false at the end of the input) are read, on the
// others they are written. Called by every process in the same order; a no-op in one process.
Status share_input(std::string* line, bool* more);

// Rank 0's words handed to every process (the server's steps, serve/mirror.h): `words` is read on
// rank 0 and replaced on the others. Called by every process in the same order; a no-op alone.
Status share_words(std::vector<int64_t>* words);

// The exchange of `shard` over MPI_COMM_WORLD (collectives: every process calls it, in the
// same order). An error in a build without MPI.
Result<std::unique_ptr<v4::Exchange>> create_exchange(const v4::Shard& shard);

// What the exchange moved, for frugal bench and the start-up line: bytes this process received
// in expert-row gathers (and the token rows they carried), sent and received as pipeline streams,
// and received as shared outputs; seconds spent inside MPI.
struct ExchangeStats {
  uint64_t gathers = 0;
  uint64_t gather_bytes_in = 0;
  uint64_t gather_rows = 0;  // token x expert rows gathered (all processes' rows of the calls)
  uint64_t stream_bytes_out = 0;
  uint64_t stream_bytes_in = 0;
  uint64_t output_bytes_in = 0;
  double seconds = 0;

  ExchangeStats& operator+=(const ExchangeStats& o) {
    gathers += o.gathers;
    gather_bytes_in += o.gather_bytes_in;
    gather_rows += o.gather_rows;
    stream_bytes_out += o.stream_bytes_out;
    stream_bytes_in += o.stream_bytes_in;
    output_bytes_in += o.output_bytes_in;
    seconds += o.seconds;
    return *this;
  }
};
// The stats of an exchange made by create_exchange (zeros for any other).
ExchangeStats exchange_stats(const v4::Exchange& exchange);
void reset_exchange_stats(v4::Exchange& exchange);

// The start-up agreement (called by every process, before loading): the same frugal binary, the
// same config.json and tensor table (names, dtypes, shapes, sizes), and the same kernel level on
// every rank. A mismatch is an error on every process naming the ranks that differ and what.
Status check_same_run(const std::string& model_dir, const std::string& kernel_isa);

// Every process's `local` status after a step that may fail on some of them (loading a shard):
// OK everywhere when it is OK everywhere, else the same error on every process, naming each
// failing rank and its message.
Status agree(const Status& local, const std::string& what);

}  // namespace frugal::parallel

#include "parallel/world.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/log.h"

#if FRUGAL_HAVE_MPI
#include <mpi.h>
#endif

namespace frugal::parallel {

namespace {
std::FILE* g_diagnostics = nullptr;  // set once by World::start; stderr when null
}  // namespace

std::FILE* diagnostics() { return g_diagnostics != nullptr ? g_diagnostics : stderr; }

bool built_with_mpi() {
#if FRUGAL_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

namespace {
#if FRUGAL_HAVE_MPI
// MPI_Comm_rank / MPI_Comm_size of the world once MPI is initialized; `alone` before.
int of_world(int (*query)(MPI_Comm, int*), int alone) {
  int on = 0;
  MPI_Initialized(&on);
  if (on == 0) return alone;
  int v = alone;
  query(MPI_COMM_WORLD, &v);
  return v;
}
#endif
}  // namespace

int world_rank() {
#if FRUGAL_HAVE_MPI
  return of_world(MPI_Comm_rank, 0);
#else
  return 0;
#endif
}

int world_size() {
#if FRUGAL_HAVE_MPI
  return of_world(MPI_Comm_size, 1);
#else
  return 1;
#endif
}

int processes_on_this_machine() {
#if FRUGAL_HAVE_MPI
  if (world_size() > 1) {
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
      int n = 1;
      MPI_Comm_size(local, &n);
      MPI_Comm_free(&local);
      return n;
    }
  }
#endif
  return 1;
}

Status share_input(std::string* line, bool* more) {
#if FRUGAL_HAVE_MPI
  if (world_size() == 1) return ok_status();
  // [0]: more, [1]: the length; then the bytes.
  uint64_t head[2] = {*more ? 1u : 0u, line->size()};
  if (MPI_Bcast(head, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return io_error("MPI_Bcast of rank 0's input failed");
  }
  *more = head[0] != 0;
  if (head[1] > static_cast<uint64_t>(INT_MAX)) {
    return out_of_range("an input line of " + std::to_string(head[1]) + " bytes (more than 2 GiB)");
  }
  line->resize(head[1]);
  if (head[1] > 0 && MPI_Bcast(line->data(), static_cast<int>(head[1]), MPI_CHAR, 0,
                               MPI_COMM_WORLD) != MPI_SUCCESS) {
    return io_error("MPI_Bcast of rank 0's input failed");
  }
#else
  (void)line;
  (void)more;
#endif
  return ok_status();
}

Status share_words(std::vector<int64_t>* words) {
#if FRUGAL_HAVE_MPI
  if (world_size() == 1) return ok_status();
  uint64_t n = words->size();
  if (MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
    return io_error("MPI_Bcast of rank 0's words failed");
  }
  if (n > static_cast<uint64_t>(INT_MAX)) {
    return out_of_range(std::to_string(n) + " words in one broadcast (more than INT_MAX)");
  }
  words->resize(n);
  if (n > 0 && MPI_Bcast(words->data(), static_cast<int>(n), MPI_INT64_T, 0, MPI_COMM_WORLD) !=
                   MPI_SUCCESS) {
    return io_error("MPI_Bcast of rank 0's words failed");
  }
#else
  (void)words;
#endif
  return ok_status();
}

Result<std::unique_ptr<World>> World::start(int* argc, char*** argv) {
  std::unique_ptr<World> w(new World());
#if FRUGAL_HAVE_MPI
  if (launched_by_mpi()) {
    // MPI starts threads of its own: they must not be the ones SIGTERM / SIGINT are delivered
    // to (frugal serve waits for them in one thread of its own, with the others blocking them),
    // so they start with both blocked; this thread's mask is restored after.
    sigset_t stop_signals, before;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &before);
    int provided = 0;
    // Serialized: one thread at a time, not always the same one (the server's scheduler thread
    // runs the forward passes; the main thread starts and stops it).
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (rc != MPI_SUCCESS) {
      return unsupported("MPI_Init_thread failed: the MPI launcher's environment is not usable");
    }
    w->initialized_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      FRUGAL_LOG_WARN(
          "MPI provides thread level %d, below MPI_THREAD_SERIALIZED: frugal serve "
          "calls MPI from its scheduler thread",
          provided);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size_);
    if (w->rank_ != 0) {  // rank 0 speaks for the run; keep a way to say what is ours alone
      const int fd = ::dup(STDERR_FILENO);
      std::FILE* diag = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
      const int null_fd = ::open("/dev/null", O_WRONLY);
      if (diag != nullptr && null_fd >= 0) {
        std::fflush(stdout);
        std::fflush(stderr);
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDERR_FILENO);
        std::setvbuf(diag, nullptr, _IOLBF, 0);
        g_diagnostics = diag;
      }
      if (null_fd >= 0) ::close(null_fd);
    }
  }
#else
  (void)argc;
  (void)argv;
#endif
  return w;
}

World::~World() {
#if FRUGAL_HAVE_MPI
  if (initialized_) MPI_Finalize();
#endif
}

bool World::finish(const Status& st, double wait_seconds) {
#if FRUGAL_HAVE_MPI
  if (!initialized_ || size_ == 1) return !st.ok();
  // Every process's status code and the first bytes of its message, gathered without blocking:
  // a process stuck in a collective of a forward that failed elsewhere never joins, and then
  // this one must not wait for it.
  constexpr int kText = 512;
  std::vector<char> mine(kText + 1, 0);
  mine[0] = static_cast<char>(st.code());
  std::strncpy(mine.data() + 1, st.message().c_str(), kText - 1);
  std::vector<char> all(static_cast<size_t>(size_) * (kText + 1), 0);
  MPI_Request req;
  MPI_Iallgather(mine.data(), kText + 1, MPI_CHAR, all.data(), kText + 1, MPI_CHAR, MPI_COMM_WORLD,
                 &req);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  int done = 0;
  while (MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(diagnostics(),
                   "frugal: rank %d: %s; the other processes did not finish within %.0f s: "
                   "stopping the run\n",
                   rank_, st.ok() ? "finished" : ("error: " + st.message()).c_str(), wait_seconds);
      std::fflush(diagnostics());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (st.ok()) return false;
  if (rank_ == 0) return true;
  return std::memcmp(all.data(), mine.data(), kText + 1) != 0;  // differs from rank 0's
#else
  (void)wait_seconds;
  return !st.ok();
#endif
}

}  // namespace frugal::parallel

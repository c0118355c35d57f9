// The start-up agreement of a parallel run: every process must run the same binary on the same
// checkpoint with the same kernels, or their results (and their collectives) would not match;
// and a process that cannot load its shard must stop all of them with its reason, not leave the
// others waiting.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "format/safetensors.h"
#include "parallel/world.h"

namespace frugal::parallel {
namespace {

// FNV-1a, 64 bits: a fingerprint, not a defence against an adversary.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }
};

Result<uint64_t> file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open to fingerprint it");
  Fnv f;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    f.add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return f.h;
}

// What every process must agree on, as fixed-size bytes for one MPI_Allgather.
struct Fingerprint {
  uint64_t binary = 0;
  uint64_t config = 0;
  uint64_t tensors = 0;
  char isa[16] = {};
  char host[64] = {};
};

}  // namespace

Status check_same_run(const std::string& model_dir, const std::string& kernel_isa) {
  Fingerprint mine;
  Status local = ok_status();
  auto note = [&](Result<uint64_t> r, uint64_t& out) {
    if (r.ok())
      out = *r;
    else if (local.ok())
      local = r.status();
  };
  note(file_hash("/proc/self/exe"), mine.binary);
  note(file_hash(model_dir + "/config.json"), mine.config);
  Result<format::Checkpoint> ck = format::Checkpoint::open(model_dir);
  if (ck.ok()) {
    Fnv f;
    for (const format::TensorInfo* t : ck->tensors()) {
      f.add(t->name);
      f.add(&t->dtype, sizeof(t->dtype));
      f.add(t->shape.data(), t->shape.size() * sizeof(int64_t));
      f.add(&t->size, sizeof(t->size));
    }
    mine.tensors = f.h;
  } else if (local.ok()) {
    local = ck.status();
  }
  std::strncpy(mine.isa, kernel_isa.c_str(), sizeof(mine.isa) - 1);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int host_len = 0;
  MPI_Get_processor_name(host, &host_len);
  std::snprintf(mine.host, sizeof(mine.host), "%s", host);
  FRUGAL_RETURN_IF_ERROR(agree(local, "could not read the model to check it"));

  const int n = world_size();
  std::vector<Fingerprint> all(static_cast<size_t>(n));
  MPI_Allgather(&mine, sizeof(Fingerprint), MPI_BYTE, all.data(), sizeof(Fingerprint), MPI_BYTE,
                MPI_COMM_WORLD);
  std::string problems;
  const Fingerprint& zero = all[0];
  for (int r = 1; r < n; ++r) {
    const Fingerprint& o = all[static_cast<size_t>(r)];
    const std::string who = "rank " + std::to_string(r) + " (" + o.host + ")";
    if (o.binary != zero.binary) problems += "; " + who + " runs a different frugal binary";
    if (o.config != zero.config)
      problems += "; " + who + " has a different " + model_dir + "/config.json";
    if (o.tensors != zero.tensors)
      problems += "; " + who + " has a different checkpoint in " + model_dir +
                  " (tensor names, dtypes, shapes or sizes)";
    if (std::strncmp(o.isa, zero.isa, sizeof(o.isa)) != 0)
      problems += "; " + who + " chose the " + o.isa + " kernels, rank 0 " + zero.isa +
                  " (set FRUGAL_ISA to a level every machine has)";
  }
  if (problems.empty()) return ok_status();
  return invalid_argument("the processes of this run differ from rank 0 (" +
                          std::string(zero.host) + ")" + problems);
}

Status agree(const Status& local, const std::string& what) {
  const int n = world_size();
  if (n == 1) return local;
  // [0]: 0 = OK, else the status code + 1; then the message.
  constexpr int kText = 400;
  std::vector<char> mine(kText, 0);
  mine[0] = local.ok() ? 0 : static_cast<char>(static_cast<int>(local.code()) + 1);
  std::strncpy(mine.data() + 1, local.message().c_str(), kText - 2);
  std::vector<char> all(static_cast<size_t>(n) * kText);
  MPI_Allgather(mine.data(), kText, MPI_CHAR, all.data(), kText, MPI_CHAR, MPI_COMM_WORLD);
  std::string failed;
  StatusCode code = StatusCode::kOk;
  for (int r = 0; r < n; ++r) {
    const char* rec = all.data() + static_cast<size_t>(r) * kText;
    if (rec[0] == 0) continue;
    failed += std::string(failed.empty() ? "" : "; ") + "rank " + std::to_string(r) + " " + what +
              ": " + std::string(rec + 1);
    if (code == StatusCode::kOk) code = static_cast<StatusCode>(rec[0] - 1);  // the first's
  }
  if (failed.empty()) return ok_status();
  return Status(code, failed);  // the same on every process
}

}  // namespace frugal::parallel

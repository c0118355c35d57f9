#include "engine/disk_probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "engine/budget.h"
#include "engine/probes.h"
#include "format/safetensors.h"

namespace frugal::engine {
namespace {

constexpr uint64_t kAlign = kDirectIoAlign;

struct OpenFile {
  std::string path;
  int fd = -1;
  uint64_t size = 0;
};

// Closes the descriptors when the probe returns, whatever the path.
struct Files {
  std::vector<OpenFile> list;
  ~Files() { close_all(); }
  void close_all() {
    for (OpenFile& f : list) {
      if (f.fd >= 0) ::close(f.fd);
      f.fd = -1;
    }
  }
};

struct Extent {
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<std::byte, FreeDeleter>;

std::string errno_text(int e) { return std::strerror(e); }

// Reads [offset, offset + bytes) completely; EINTR retried, a short read is an error.
Status read_fully(const OpenFile& f, std::byte* buf, uint64_t offset, uint64_t bytes) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t r = ::pread(f.fd, buf + done, bytes - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return io_error(f.path + ": read of " + std::to_string(bytes) + " bytes at offset " +
                      std::to_string(offset) + " failed: " + errno_text(errno));
    }
    if (r == 0) {
      return io_error(f.path + ": short read at offset " + std::to_string(offset + done) +
                      " (file of " + std::to_string(f.size) + " bytes changed on disk?)");
    }
    done += static_cast<uint64_t>(r);
  }
  return ok_status();
}

// Opens every file with O_DIRECT, or all of them buffered when one refuses it; `reason` says why.
Status open_files(const std::vector<std::string>& paths, bool force_buffered, Files* files,
                  bool* direct, std::string* reason, std::byte* probe_buf) {
  *direct = !force_buffered;
  if (force_buffered) *reason = "buffered reads requested";
  for (const std::string& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return io_error(p + ": " + errno_text(errno));
    if (static_cast<uint64_t>(st.st_size) < kAlign) continue;  // nothing to read aligned
    files->list.push_back({p, -1, static_cast<uint64_t>(st.st_size)});
  }
  if (files->list.empty()) {
    return invalid_argument("disk probe: no safetensors file of at least 4 KiB among " +
                            std::to_string(paths.size()) + " file(s)");
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool refused = false;
    for (OpenFile& f : files->list) {
      const int flags = O_RDONLY | O_CLOEXEC | (*direct ? O_DIRECT : 0);
      f.fd = ::open(f.path.c_str(), flags);
      if (f.fd < 0 && *direct && errno == EINVAL) {
        *reason = f.path + ": open with O_DIRECT refused (" + errno_text(EINVAL) + ")";
        refused = true;
        break;
      }
      if (f.fd < 0) return io_error(f.path + ": " + errno_text(errno));
      if (!*direct) {
        // No readahead: it would cache pages past the extent that the DONTNEED after the read
        // does not cover.
        ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_RANDOM);
        continue;
      }
      // Some file systems accept the flag at open and refuse the read.
      const ssize_t r = ::pread(f.fd, probe_buf, kAlign, 0);
      if (r < 0 && errno == EINVAL) {
        *reason = f.path + ": O_DIRECT read refused (" + errno_text(EINVAL) + ")";
        refused = true;
        break;
      }
      if (r < 0) return io_error(f.path + ": read failed: " + errno_text(errno));
    }
    if (!refused) return ok_status();
    files->close_all();
    *direct = false;
  }
  return internal_error("disk probe: open_files did not settle");
}

// One pass's extents: sizes uniform in [min, max] (4 KiB steps), files picked in proportion to
// their size, offsets uniform and aligned, never past the end.
std::vector<Extent> make_extents(const std::vector<OpenFile>& files, const DiskProbeOptions& o,
                                 std::mt19937_64& rng) {
  uint64_t total = 0;
  for (const OpenFile& f : files) total += f.size;
  const uint64_t lo = std::max<uint64_t>(o.min_extent / kAlign, 1);
  const uint64_t hi = std::max<uint64_t>(o.max_extent / kAlign, lo);
  std::vector<Extent> out;
  uint64_t bytes = 0;
  while (bytes < o.bytes_per_pass) {
    uint64_t at = std::uniform_int_distribution<uint64_t>(0, total - 1)(rng);
    uint32_t i = 0;
    while (at >= files[i].size) at -= files[i++].size;
    const uint64_t pages = files[i].size / kAlign;
    const uint64_t n = std::min(std::uniform_int_distribution<uint64_t>(lo, hi)(rng), pages);
    const uint64_t start = std::uniform_int_distribution<uint64_t>(0, pages - n)(rng);
    out.push_back({i, start * kAlign, n * kAlign});
    bytes += n * kAlign;
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> checkpoint_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (fs::path(path).extension() != ".safetensors") {
      return invalid_argument(path + ": not a .safetensors file or a checkpoint folder");
    }
    return std::vector<std::string>{path};
  }
  if (!fs::is_directory(path, ec)) return not_found(path + ": no such checkpoint file or folder");
  const fs::path index = fs::path(path) / "model.safetensors.index.json";
  if (fs::is_regular_file(index, ec)) {
    std::ifstream f(index);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) return io_error(index.string() + ": cannot read");
    FRUGAL_ASSIGN_OR_RETURN(format::SafetensorsIndex idx,
                            format::parse_safetensors_index(ss.str(), index.string()));
    std::set<std::string> shards;
    for (const auto& [name, shard] : idx.weight_map) shards.insert(shard);
    std::vector<std::string> out;
    for (const std::string& s : shards) out.push_back((fs::path(path) / s).string());
    if (out.empty()) return invalid_argument(index.string() + ": weight_map names no shard");
    return out;
  }
  const fs::path single = fs::path(path) / "model.safetensors";
  if (fs::is_regular_file(single, ec)) return std::vector<std::string>{single.string()};
  return not_found(path + ": no model.safetensors or model.safetensors.index.json");
}

Result<DiskProbeResult> measure_disk_bandwidth(const std::string& model_path,
                                               const DiskProbeOptions& options) {
  FRUGAL_ASSIGN_OR_RETURN(std::vector<std::string> files, checkpoint_files(model_path));
  return measure_disk_bandwidth(files, options);
}

Result<DiskProbeResult> measure_disk_bandwidth(const std::vector<std::string>& paths,
                                               const DiskProbeOptions& o) {
  if (o.threads < 1 || o.passes < 1 || o.bytes_per_pass == 0 || o.min_extent == 0 ||
      o.max_extent < o.min_extent) {
    return invalid_argument(
        "disk probe: threads, passes, bytes_per_pass >= 1 and "
        "0 < min_extent <= max_extent required");
  }
  const uint64_t buf_bytes = std::max<uint64_t>(o.max_extent / kAlign, 1) * kAlign;
  std::vector<AlignedBytes> bufs;
  for (int t = 0; t < o.threads; ++t) {
    void* p = std::aligned_alloc(kAlign, buf_bytes);
    if (p == nullptr) return resource_exhausted("disk probe: no memory for read buffers");
    bufs.emplace_back(static_cast<std::byte*>(p));
  }
  DiskProbeResult res;
  res.threads = o.threads;
  Files files;
  FRUGAL_RETURN_IF_ERROR(open_files(paths, o.force_buffered, &files, &res.direct,
                                    &res.fallback_reason, bufs[0].get()));
  res.files = static_cast<int>(files.list.size());
  std::mt19937_64 rng(o.seed);
  for (int pass = 0; pass < o.passes; ++pass) {
    const std::vector<Extent> extents = make_extents(files.list, o, rng);
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status failed = ok_status();
    std::atomic<bool> stop{false};
    auto worker = [&](int t) {
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t i = next.fetch_add(1);
        if (i >= extents.size()) break;
        const Extent& e = extents[i];
        const OpenFile& f = files.list[e.file];
        const auto off = static_cast<off_t>(e.offset);
        const auto len = static_cast<off_t>(e.bytes);
        if (!res.direct) ::posix_fadvise(f.fd, off, len, POSIX_FADV_DONTNEED);
        Status s = read_fully(f, bufs[static_cast<size_t>(t)].get(), e.offset, e.bytes);
        if (!res.direct) ::posix_fadvise(f.fd, off, len, POSIX_FADV_DONTNEED);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (failed.ok()) failed = std::move(s);
          stop = true;
        }
      }
    };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 1; t < o.threads; ++t) threads.emplace_back(worker, t);
    worker(0);
    for (std::thread& th : threads) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FRUGAL_RETURN_IF_ERROR(failed);
    uint64_t bytes = 0;
    for (const Extent& e : extents) bytes += e.bytes;
    res.bytes_read += bytes;
    res.pass_gbps.push_back(static_cast<double>(bytes) / std::max(s, 1e-9) / 1e9);
  }
  res.gbps = median(res.pass_gbps);
  return res;
}

}  // namespace frugal::engine

// The disk read probe: how fast a model's own safetensors files read the way the expert cache
// reads them (engine/budget.h, docs/STREAMING.md). Random extents of 1-16 MiB at 4 KiB-aligned
// offsets across all the files, `threads` reads in flight (one blocking pread per thread, the
// queue depth the expert reads will have), timed per pass; the figure is the median pass in GB/s
// (1e9 bytes per second).
//
// Reads use O_DIRECT into aligned buffers, so they come from the device and leave nothing in the
// page cache. Where the file system refuses O_DIRECT (open or the first read fails with EINVAL,
// e.g. tmpfs before Linux 6.6, some FUSE and network file systems), the probe falls back to
// buffered reads without readahead (POSIX_FADV_RANDOM) and drops each extent's cached pages with
// posix_fadvise(POSIX_FADV_DONTNEED) before reading it (so it reads from the device, not from an
// earlier pass) and after (so the page cache does not grow); the result says so. DONTNEED leaves
// pages that some process maps alone, so a mapped model running beside the probe keeps its pages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace frugal::engine {

struct DiskProbeOptions {
  uint64_t min_extent = uint64_t{1} << 20;  // bytes; multiples of 4 KiB
  uint64_t max_extent = uint64_t{16} << 20;
  int threads = 4;  // reads in flight
  uint64_t bytes_per_pass = uint64_t{256} << 20;
  int passes = 3;               // the median is reported
  uint64_t seed = 1;            // of the extents' sizes and places
  bool force_buffered = false;  // tests: take the fallback path
};

struct DiskProbeResult {
  double gbps = 0;                // median pass
  std::vector<double> pass_gbps;  // every pass, in order
  bool direct = true;             // O_DIRECT; false: buffered + POSIX_FADV_DONTNEED
  std::string fallback_reason;    // why O_DIRECT was not used ("" when it was)
  uint64_t bytes_read = 0;        // all passes
  int files = 0;                  // files read from
  int threads = 0;
};

// The safetensors files of a checkpoint: `path` itself when it is a .safetensors file, the shards
// named by `path`/model.safetensors.index.json, else `path`/model.safetensors (Checkpoint::open's
// order).
Result<std::vector<std::string>> checkpoint_files(const std::string& path);

// Runs the probe over checkpoint_files(model_path). Files smaller than 4 KiB are skipped; an
// extent never passes the end of its file (small files get extents of their own size, rounded
// down to 4 KiB). Errors name the file: a read error, a short read, no file of at least 4 KiB.
Result<DiskProbeResult> measure_disk_bandwidth(const std::string& model_path,
                                               const DiskProbeOptions& options = {});
// The same over a given list of files.
Result<DiskProbeResult> measure_disk_bandwidth(const std::vector<std::string>& files,
                                               const DiskProbeOptions& options = {});

}  // namespace frugal::engine

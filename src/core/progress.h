// Progress of a long job counted in bytes (writing a checkpoint, reading one), drawn on one
// terminal line that is rewritten in place:
//
//   synth: 12.40 GiB / 40.07 GiB (31%), 402 MiB/s, 1m10s left
//
// and closed by one summary line ("synth: 40.07 GiB in 1m42s, 402 MiB/s"). It draws nothing
// unless enabled, and front ends enable it only when stderr is a terminal (stderr_is_terminal()),
// so a piped or logged run stays quiet. Redraws are rate-limited (every 0.25 s), so add() may be
// called per MiB. Not thread-safe: one thread reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace frugal {

class ByteProgress {
 public:
  struct Options {
    std::string what;    // the line's prefix, e.g. "synth"
    uint64_t total = 0;  // bytes expected; 0: unknown (no percentage, no time left)
    bool enabled = false;
    std::FILE* out = stderr;
  };
  explicit ByteProgress(Options options);
  ByteProgress(const ByteProgress&) = delete;
  ByteProgress& operator=(const ByteProgress&) = delete;
  ~ByteProgress();  // finish()

  void add(uint64_t bytes);
  // Draws the summary line (once; later calls do nothing). Nothing when disabled or when no
  // line was ever drawn (a job shorter than the first redraw stays silent).
  void finish();

  uint64_t done() const { return done_; }

 private:
  void draw(bool final_line);

  Options options_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
  bool finished_ = false;
};

// Whether stderr is a terminal (isatty), the usual condition for drawing progress.
bool stderr_is_terminal();

// "1.50 GiB", "512.00 MiB", "17 B": binary units, two decimals.
std::string format_byte_count(uint64_t bytes);
// "45s", "3m05s", "2h07m".
std::string format_duration(double seconds);

}  // namespace frugal

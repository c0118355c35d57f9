#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace frugal {
namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(250);

double seconds_between(std::chrono::steady_clock::time_point a,
                       std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

ByteProgress::ByteProgress(Options options)
    : options_(std::move(options)), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ByteProgress::~ByteProgress() { finish(); }

void ByteProgress::add(uint64_t bytes) {
  done_ += bytes;
  if (!options_.enabled) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  draw(false);
}

void ByteProgress::finish() {
  if (finished_) return;
  finished_ = true;
  if (options_.enabled && drawn_) draw(true);
}

void ByteProgress::draw(bool final_line) {
  const double elapsed = seconds_between(start_, std::chrono::steady_clock::now());
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const std::string rate_text = format_byte_count(static_cast<uint64_t>(rate)) + "/s";
  std::string line = options_.what + ": " + format_byte_count(done_);
  if (final_line) {
    line += " in " + format_duration(elapsed) + ", " + rate_text;
  } else {
    if (options_.total > 0) {
      const double frac = std::min(1.0, static_cast<double>(done_) / options_.total);
      line += " / " + format_byte_count(options_.total) + " (" +
              std::to_string(static_cast<int>(frac * 100)) + "%)";
    }
    line += ", " + rate_text;
    if (options_.total > done_ && rate > 0) {
      line += ", " + format_duration(static_cast<double>(options_.total - done_) / rate) + " left";
    }
  }
  // \r returns to the start of the line; \x1b[K clears what a longer earlier line left.
  std::fprintf(options_.out, "\r%s\x1b[K%s", line.c_str(), final_line ? "\n" : "");
  std::fflush(options_.out);
  drawn_ = true;
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string format_byte_count(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f %s", v, units[u]);
  }
  return buf;
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%lds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  }
  return buf;
}

}  // namespace frugal

#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace frugal {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "";
  }
  return "";
}
}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  return std::nullopt;
}

void init_log_level_from_env() {
  const char* v = std::getenv("FRUGAL_LOG");
  if (v == nullptr) return;
  if (auto level = parse_log_level(v)) {
    set_log_level(*level);
  } else {
    std::fprintf(stderr, "frugal: warning: FRUGAL_LOG=%s is not one of debug|info|warn|error|off\n",
                 v);
  }
}

void log_message(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load() || level == LogLevel::kOff) return;
  char buf[2048];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  std::fprintf(stderr, "frugal: %s: %s\n", level_tag(level), buf);
}

}  // namespace frugal

// Leveled logging to stderr. The level is process-wide (set once by the front end: CLI flag
// --log-level or FRUGAL_LOG=debug|info|warn|error|off); messages are printf-style and one line each.
#pragma once

#include <cstdarg>
#include <optional>
#include <string_view>

namespace frugal {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
std::optional<LogLevel> parse_log_level(std::string_view name);
// Reads FRUGAL_LOG if set; unknown values are reported once and ignored.
void init_log_level_from_env();

[[gnu::format(printf, 2, 3)]] void log_message(LogLevel level, const char* fmt, ...);

}  // namespace frugal

#define FRUGAL_LOG_DEBUG(...) ::frugal::log_message(::frugal::LogLevel::kDebug, __VA_ARGS__)
#define FRUGAL_LOG_INFO(...) ::frugal::log_message(::frugal::LogLevel::kInfo, __VA_ARGS__)
#define FRUGAL_LOG_WARN(...) ::frugal::log_message(::frugal::LogLevel::kWarn, __VA_ARGS__)
#define FRUGAL_LOG_ERROR(...) ::frugal::log_message(::frugal::LogLevel::kError, __VA_ARGS__)

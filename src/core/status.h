// Status and Result<T>: the error type at every boundary (files, configs, requests).
//
// Library code never exits or aborts on bad input: it returns a Status whose message names the
// file, tensor, field or parameter and what was expected. Invariants of our own code (things no
// input can cause) use FRUGAL_CHECK instead.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace frugal {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // a caller passed a bad value (flag, request field, API argument)
  kNotFound,           // a file, tensor or field that must exist does not
  kIoError,            // the OS refused (open, read, mmap, write)
  kCorrupt,            // a file's contents contradict its own format
  kUnsupported,        // valid input that this build cannot run (dtype, ratio, architecture)
  kOutOfRange,         // an index, size or offset past a limit
  kResourceExhausted,  // out of memory or over a configured budget
  kInternal,           // a bug in frugal
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: model.safetensors: tensor 'embed.weight': ..." — one line for the user.
  std::string to_string() const;

  // Prepends context ("loading layer 3: ") to an error; OK stays OK.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status resource_exhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T>: a T or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] void check_failed(const char* file, int line, const char* expr, std::string_view msg);

}  // namespace frugal

#define FRUGAL_CONCAT_INNER(a, b) a##b
#define FRUGAL_CONCAT(a, b) FRUGAL_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function if it is an error.
#define FRUGAL_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::frugal::Status frugal_status_ = (expr);     \
    if (!frugal_status_.ok()) return frugal_status_; \
  } while (0)

// FRUGAL_ASSIGN_OR_RETURN(auto x, make_x()): binds the value or returns the error.
#define FRUGAL_ASSIGN_OR_RETURN(lhs, expr) \
  FRUGAL_ASSIGN_OR_RETURN_IMPL(FRUGAL_CONCAT(frugal_result_, __LINE__), lhs, expr)
#define FRUGAL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// Invariant of frugal's own code. Never use for conditions that input can trigger.
#define FRUGAL_CHECK(cond)                                               \
  do {                                                                   \
    if (!(cond)) ::frugal::check_failed(__FILE__, __LINE__, #cond, ""); \
  } while (0)
#define FRUGAL_CHECK_MSG(cond, msg)                                         \
  do {                                                                      \
    if (!(cond)) ::frugal::check_failed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

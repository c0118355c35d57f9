// Internal to the OpenAI API layer (api_request.cpp, api_chat.cpp): the JSON field helpers the
// request parsers share. Not part of the public API (that is api_request.h); include it only from
// src/serve/api_*.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "chat/py_json.h"
#include "serve/api_request.h"

namespace frugal::serve::detail {

using chat::Json;
using Error = std::optional<ApiError>;  // nullopt = fine

// Returns the ApiError of `expr` (an Error) from the enclosing function.
#define SERVE_RETURN_IF_ERROR(expr)                                                 \
  do {                                                                              \
    if (::frugal::serve::detail::Error serve_error_ = (expr)) return *serve_error_; \
  } while (0)

// A 400 error about `param` ("param: what").
ApiError field_error(std::string param, const std::string& what);

// A value as JSON text for "got ..." parts of messages (shortened).
std::string shown(const Json& v);

// An optional field: nullptr when absent or null.
const Json* field(const Json& obj, const char* key);

// The accepted range of a get_number field.
struct Range {
  double lo, hi;  // hi = inf: no upper bound
  bool lo_open = false;
};

// The get_* helpers leave *out as it is when the field is absent or null.
Error get_number(const Json& obj, const char* key, const Range& r, float* out);

// An integral JSON number (10 and 10.0 alike) as int64; nullopt for anything else.
std::optional<int64_t> as_int(const Json& v);

// `v` as an integer in [lo, hi] (hi = int64 max: no upper bound); errors name `param`.
Error check_int(const Json& v, const std::string& param, int64_t lo, int64_t hi, int64_t* out);
Error get_int(const Json& obj, const char* key, int64_t lo, int64_t hi,
              std::optional<int64_t>* out);
Error get_bool(const Json& obj, const char* key, const std::string& param, bool* out);

// An error for the first top-level field that neither both endpoints nor this one (chat when
// `chat`, else completions) accept: a typo must not pass silently.
Error check_known_fields(const Json& doc, bool chat);

// The request body as a JSON object, or the error that says why it is not one.
std::variant<Json, ApiError> parse_body(std::string_view body);

// "model" must name the served model (else 404 model_not_found).
Error check_model(const Json& doc, const ServedModel& m, std::string* out);

// Everything GenParams holds except logprobs, whose form differs per endpoint (api_request.cpp).
Error parse_gen(const Json& doc, const ServedModel& m, GenParams* g);

}  // namespace frugal::serve::detail

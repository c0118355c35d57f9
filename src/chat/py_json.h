// JSON text exactly as Python's json.dumps(value, ensure_ascii=False) writes it: ", " and ": "
// separators, keys in insertion order, non-ASCII characters as themselves, floats in Python's
// repr form (1.0, 1e-05, 1e+16). The official V4 chat encoder embeds such text in prompts (tool
// schemas, non-string tool arguments) and in parsed tool-call arguments, so byte-for-byte
// agreement depends on it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace frugal::chat {

using Json = nlohmann::ordered_json;  // keeps key order, like a Python dict

std::string py_json_dumps(const Json& value);
void py_json_dump_string(std::string_view s, std::string* out);  // a quoted, escaped string
std::string py_float_repr(double v);

// Python's truth value of a JSON value (None, false, 0, "", [], {} are false).
bool py_truthy(const Json& value);

}  // namespace frugal::chat

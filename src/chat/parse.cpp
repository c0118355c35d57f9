#include "chat/parse.h"

#include <utility>

namespace frugal::chat {
namespace {

std::string s(std::string_view v) { return std::string(v); }

// Concatenation by appending (GCC 12 warns falsely on "literal" + std::string, PR 105329).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

// mirrors _read_until_stop: the earliest of the stop strings at or after `index`.
struct ReadResult {
  size_t index;             // just past the stop string (or the end of the text)
  std::string_view before;  // text between the old index and the stop string
  int stop;                 // index into `stops`, or -1 when none was found
};

ReadResult read_until_stop(std::string_view text, size_t index,
                           std::initializer_list<std::string_view> stops) {
  size_t best = text.size();
  int which = -1;
  int k = 0;
  for (std::string_view st : stops) {
    const size_t pos = text.find(st, index);
    if (pos != std::string_view::npos && pos < best) {
      best = pos;
      which = k;
    }
    ++k;
  }
  if (which < 0) return {text.size(), text.substr(index), -1};
  return {best + (stops.begin() + which)->size(), text.substr(index, best - index), which};
}

Status format_error(const std::string& what, size_t at) {
  return invalid_argument("completion: " + what + " (at byte " + std::to_string(at) + ")");
}

// Python's str.isspace for the code points \s matches in the official name regex.
size_t skip_python_space(std::string_view t) {
  size_t i = 0;
  while (i < t.size()) {
    const auto c = static_cast<unsigned char>(t[i]);
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) {
      ++i;
      continue;
    }
    static const std::string_view kWide[] = {"\u0085", "\u00A0", "\u1680", "\u2000", "\u2001",
                                             "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                             "\u2007", "\u2008", "\u2009", "\u200A", "\u2028",
                                             "\u2029", "\u202F", "\u205F", "\u3000"};
    bool hit = false;
    for (std::string_view w : kWide) {
      if (t.substr(i, w.size()) == w) {
        i += w.size();
        hit = true;
        break;
      }
    }
    if (!hit) break;
  }
  return i;
}

// `^\s*name="(.*?)">\n$` (DOTALL): Python's $ also matches before one final "\n".
bool match_tool_name(std::string_view t, std::string* name) {
  t.remove_prefix(skip_python_space(t));
  if (t.substr(0, 6) != "name=\"") return false;
  t.remove_prefix(6);
  for (std::string_view tail : {std::string_view("\">\n\n"), std::string_view("\">\n")}) {
    if (t.size() >= tail.size() && t.substr(t.size() - tail.size()) == tail) {
      *name = s(t.substr(0, t.size() - tail.size()));
      return true;
    }
  }
  return false;
}

// `^ name="(.*?)" string="(true|false)">(.*?)<$` (DOTALL).
bool match_parameter(std::string_view t, std::string* name, std::string* is_str,
                     std::string* value) {
  if (t.substr(0, 7) != " name=\"") return false;
  t.remove_prefix(7);
  size_t best = std::string_view::npos;
  std::string_view flag;
  for (std::string_view f : {std::string_view("true"), std::string_view("false")}) {
    const std::string sep = cat({"\" string=\"", f, "\">"});
    const size_t pos = t.find(sep);
    if (pos < best) {
      best = pos;
      flag = f;
    }
  }
  if (best == std::string_view::npos) return false;
  std::string_view rest = t.substr(best + 12 + flag.size());
  if (rest.size() >= 2 && rest.substr(rest.size() - 2) == "<\n") {
    rest.remove_suffix(2);
  } else if (!rest.empty() && rest.back() == '<') {
    rest.remove_suffix(1);
  } else {
    return false;
  }
  *name = s(t.substr(0, best));
  *is_str = s(flag);
  *value = s(rest);
  return true;
}

// mirrors decode_dsml_to_arguments: string values are JSON-encoded, others inserted verbatim.
std::string dsml_arguments_json(
    const std::vector<std::pair<std::string, std::pair<std::string, std::string>>>& args) {
  std::string out = "{";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ", ";
    py_json_dump_string(args[i].first, &out);
    out += ": ";
    if (args[i].second.second == "true") {
      py_json_dump_string(args[i].second.first, &out);
    } else {
      out += args[i].second.first;
    }
  }
  return out + "}";
}

// mirrors parse_tool_calls; `index` is just past "\n\n<｜DSML｜tool_calls".
Status parse_tool_calls(std::string_view text, size_t* index, std::vector<ParsedToolCall>* out) {
  const std::string invoke = cat({"<", kDsml, "invoke"});
  const std::string calls_end = cat({"</", kDsml, "tool_calls>"});
  const std::string param = cat({"<", kDsml, "parameter"});
  const std::string invoke_end = cat({"</", kDsml, "invoke"});
  const std::string param_end = cat({"/", kDsml, "parameter"});
  size_t i = *index;
  while (i < text.size()) {
    ReadResult r = read_until_stop(text, i, {invoke, calls_end});
    if (r.before != ">\n") return format_error("tool calls: expected '>\\n' before an invoke", i);
    i = r.index;
    if (r.stop == 1) break;
    if (r.stop < 0) return format_error("tool calls: missing " + calls_end, i);
    r = read_until_stop(text, i, {param, invoke_end});
    std::string name;
    if (!match_tool_name(r.before, &name)) {
      return format_error("tool calls: expected ' name=\"TOOL\">\\n' after " + invoke, i);
    }
    i = r.index;
    std::vector<std::pair<std::string, std::pair<std::string, std::string>>> args;
    int stop = r.stop;
    while (stop == 0) {
      r = read_until_stop(text, i, {param_end});
      std::string pname, is_str, value;
      if (!match_parameter(r.before, &pname, &is_str, &value)) {
        return format_error(
            "tool calls: expected ' name=\"P\" string=\"true|false\">VALUE<' "
            "in a parameter",
            i);
      }
      for (const auto& a : args) {
        if (a.first == pname)
          return format_error("tool calls: duplicate parameter '" + pname + "'", i);
      }
      args.push_back({pname, {value, is_str}});
      i = r.index;
      r = read_until_stop(text, i, {param, invoke_end});
      if (r.before != ">\n")
        return format_error("tool calls: expected '>\\n' after a parameter", i);
      i = r.index;
      stop = r.stop;
    }
    out->push_back({name, dsml_arguments_json(args)});
  }
  *index = i;
  return ok_status();
}

}  // namespace

Result<ParsedMessage> parse_completion(std::string_view text, ThinkingMode mode) {
  ParsedMessage m;
  const std::string calls_start = cat({"\n\n<", kDsml, "tool_calls"});
  size_t i = 0;
  if (mode == ThinkingMode::kThinking) {
    ReadResult r = read_until_stop(text, i, {kThinkEnd, calls_start});
    if (r.stop != 0) return format_error("thinking mode: missing </think> after the reasoning", i);
    m.reasoning_content = s(r.before);
    i = r.index;
  }
  ReadResult r = read_until_stop(text, i, {kEos, calls_start});
  m.content = s(r.before);
  i = r.index;
  if (r.stop == 1) {
    FRUGAL_RETURN_IF_ERROR(parse_tool_calls(text, &i, &m.tool_calls));
    r = read_until_stop(text, i, {kEos});
    if (!r.before.empty()) return format_error("unexpected text after the tool calls", i);
    i = r.index;
  } else if (r.stop != 0) {
    return format_error("missing <｜end▁of▁sentence｜> at the end", i);
  }
  if (i != text.size()) return format_error("unexpected text after <｜end▁of▁sentence｜>", i);
  for (std::string_view sp : {kBos, kEos, kThinkStart, kThinkEnd, kDsml}) {
    if (m.content.find(sp) != std::string::npos ||
        m.reasoning_content.find(sp) != std::string::npos) {
      return invalid_argument("completion: unexpected special token '" + s(sp) +
                              "' in the reasoning or the answer");
    }
  }
  return m;
}

Json parsed_message_to_json(const ParsedMessage& m) {
  Json calls = Json::array();
  for (const ParsedToolCall& tc : m.tool_calls) {
    calls.push_back(
        {{"type", "function"}, {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
  }
  return {{"role", "assistant"},
          {"content", m.content},
          {"reasoning_content", m.reasoning_content},
          {"tool_calls", calls}};
}

}  // namespace frugal::chat

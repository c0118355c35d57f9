// Incremental reasoning / answer / tool-call split (output_parser.h).
#include "serve/output_parser.h"

#include <algorithm>
#include <utility>

namespace frugal::serve {
namespace {

// "<｜DSML｜tool_calls" and the opener the official format writes before it.
const std::string& opener_tag() {
  // Built by appending (GCC 12 warns falsely on "literal" + std::string, PR 105329).
  static const std::string kTag = std::string("<").append(chat::kDsml).append("tool_calls");
  return kTag;
}
const std::string& opener() {
  static const std::string kOpener = std::string("\n\n").append(opener_tag());
  return kOpener;
}

// The longest tail of `s` that is a proper prefix of `marker` (it may still become the marker).
size_t marker_hold(std::string_view s, std::string_view marker) {
  for (size_t k = std::min(s.size(), marker.size() - 1); k > 0; --k) {
    if (s.substr(s.size() - k) == marker.substr(0, k)) return k;
  }
  return 0;
}

// The bytes of an unfinished UTF-8 character at the end of `s` (0 if none).
size_t utf8_hold(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[s.size() - k]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::string make_id(std::string_view prefix, uint64_t* state) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id += kAlphabet[splitmix64(state) % kAlphabet.size()];
  return id;
}

OutputParser::OutputParser(chat::ThinkingMode mode, bool tools, std::string prefill,
                           uint64_t id_seed)
    : tools_(tools),
      prefill_len_(prefill.size()),
      id_state_(id_seed),
      phase_(mode == chat::ThinkingMode::kThinking ? Phase::kReasoning : Phase::kContent),
      text_(std::move(prefill)) {
  std::vector<OutputDelta> none;  // the prefill is never emitted
  advance(/*final=*/false, &none);
}

std::vector<OutputDelta> OutputParser::push(std::string_view text) {
  std::vector<OutputDelta> out;
  if (phase_ == Phase::kDone) return out;
  text_.append(text);
  advance(/*final=*/false, &out);
  return out;
}

std::vector<OutputDelta> OutputParser::finish(bool eos) {
  std::vector<OutputDelta> out;
  if (phase_ == Phase::kDone) return out;
  advance(/*final=*/true, &out);
  if (phase_ == Phase::kToolCalls) resolve_tool_calls(eos, &out);
  phase_ = Phase::kDone;
  return out;
}

void OutputParser::emit(OutputDelta::Kind kind, size_t from, size_t to,
                        std::vector<OutputDelta>* out) {
  from = std::max(from, prefill_len_);
  if (to <= from) return;
  const std::string_view t(text_.data() + from, to - from);
  (kind == OutputDelta::Kind::kReasoning ? message_.reasoning_content : message_.content).append(t);
  if (!out->empty() && out->back().kind == kind) {
    out->back().text.append(t);
  } else {
    OutputDelta d;
    d.kind = kind;
    d.text = std::string(t);
    out->push_back(std::move(d));
  }
}

void OutputParser::advance(bool final, std::vector<OutputDelta>* out) {
  while (phase_ == Phase::kReasoning || phase_ == Phase::kContent) {
    if (phase_ == Phase::kContent) {
      if (!advance_content(final, out)) return;
      continue;
    }
    // Reasoning runs up to the first "</think>"; without one, everything is reasoning.
    const size_t end_tag = text_.find(chat::kThinkEnd, pos_);
    if (end_tag != std::string::npos) {
      emit(OutputDelta::Kind::kReasoning, pos_, end_tag, out);
      pos_ = answer_start_ = end_tag + chat::kThinkEnd.size();
      phase_ = Phase::kContent;
      continue;
    }
    const std::string_view rest = std::string_view(text_).substr(pos_);
    const size_t hold = final ? 0 : std::max(marker_hold(rest, chat::kThinkEnd), utf8_hold(rest));
    emit(OutputDelta::Kind::kReasoning, pos_, text_.size() - hold, out);
    pos_ = text_.size() - hold;
    return;
  }
}

bool OutputParser::advance_content(bool final, std::vector<OutputDelta>* out) {
  const std::string_view rest = std::string_view(text_).substr(pos_);
  if (!tools_) {
    const size_t hold = final ? 0 : utf8_hold(rest);
    emit(OutputDelta::Kind::kContent, pos_, text_.size() - hold, out);
    pos_ = text_.size() - hold;
    return false;
  }
  // A block right at the start of the answer, without the "\n\n" (e.g. from a prefill).
  if (pos_ == answer_start_) {
    if (rest.substr(0, opener_tag().size()) == opener_tag()) {
      block_start_ = pos_;
      block_body_ = pos_ + opener_tag().size();
      phase_ = Phase::kToolCalls;
      return true;
    }
    if (!final && std::string_view(opener_tag()).substr(0, rest.size()) == rest) return false;
  }
  const size_t at = text_.find(opener(), pos_);
  if (at != std::string::npos) {
    emit(OutputDelta::Kind::kContent, pos_, at, out);
    pos_ = block_start_ = at;
    block_body_ = at + opener().size();
    phase_ = Phase::kToolCalls;
    return true;
  }
  const size_t hold = final ? 0 : std::max(marker_hold(rest, opener()), utf8_hold(rest));
  emit(OutputDelta::Kind::kContent, pos_, text_.size() - hold, out);
  pos_ = text_.size() - hold;
  return false;
}

void OutputParser::resolve_tool_calls(bool eos, std::vector<OutputDelta>* out) {
  // The block alone, in the official form ("\n\n" opener, EOS after a complete turn): the
  // official parser then decides the calls and their argument JSON. The reasoning and answer
  // before it were streamed already, so the official checks on them (no special tokens) cannot
  // retract anything and are not applied.
  std::string block = opener();
  block.append(text_, block_body_);
  if (eos) block += chat::kEos;
  Result<chat::ParsedMessage> parsed = chat::parse_completion(block, chat::ThinkingMode::kChat);
  if (parsed.ok() && parsed->content.empty()) {
    for (chat::ParsedToolCall& call : parsed->tool_calls) {
      OutputDelta d;
      d.kind = OutputDelta::Kind::kToolCall;
      d.tool_index = int32_t(message_.tool_calls.size());
      d.tool_id = make_id("call_", &id_state_);
      d.tool_name = call.name;
      d.arguments = call.arguments;
      tool_ids_.push_back(d.tool_id);
      message_.tool_calls.push_back(std::move(call));
      out->push_back(std::move(d));
    }
    pos_ = text_.size();
    return;
  }
  // Malformed DSML, or a block cut off by a token limit or a stop string: send the text as
  // content rather than dropping it (the prefill part of it excepted, as always).
  emit(OutputDelta::Kind::kContent, block_start_, text_.size(), out);
  pos_ = text_.size();
}

}  // namespace frugal::serve

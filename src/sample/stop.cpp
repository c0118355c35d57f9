#include "sample/stop.h"

#include <algorithm>

namespace frugal::sample {

Result<StopChecker> StopChecker::create(std::vector<std::string> stop_strings,
                                        std::vector<int32_t> stop_tokens) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) {
      return invalid_argument("stop string " + std::to_string(i) + " is empty");
    }
  }
  return StopChecker(std::move(stop_strings), std::move(stop_tokens));
}

StopChecker::StopChecker(std::vector<std::string> strings, std::vector<int32_t> tokens)
    : strings_(std::move(strings)), tokens_(std::move(tokens)) {
  for (const std::string& s : strings_) max_len_ = std::max(max_len_, s.size());
  pending_.reserve(4 * max_len_ + 256);
  out_.reserve(4 * max_len_ + 256);
}

void StopChecker::reset() {
  pending_.clear();
  out_.clear();
}

bool StopChecker::is_stop_token(int32_t token) const {
  return std::find(tokens_.begin(), tokens_.end(), token) != tokens_.end();
}

std::string_view StopChecker::take(size_t n) {
  out_.assign(pending_, 0, n);
  pending_.erase(0, n);
  return out_;
}

StopChecker::Step StopChecker::push(int32_t token, std::string_view text) {
  if (is_stop_token(token)) return {take(pending_.size()), true};
  pending_.append(text);
  if (strings_.empty()) return {take(pending_.size()), false};
  // The earliest complete stop string. pending_ is the held-back tail (shorter than the longest
  // stop string) plus the new text, so this scan is short.
  size_t first = std::string::npos;
  for (const std::string& s : strings_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    Step st{take(first), true};
    pending_.clear();
    return st;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : strings_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  return {take(pending_.size() - hold), false};
}

std::string_view StopChecker::flush() { return take(pending_.size()); }

}  // namespace frugal::sample

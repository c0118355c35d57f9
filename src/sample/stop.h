// Stop conditions for generation: stop tokens (e.g. EOS) and stop strings that may span token
// boundaries. Text that could be the start of a stop string is held back until it is known not
// to be; neither a stop string nor a stop token's own text is ever emitted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace frugal::sample {

class StopChecker {
 public:
  // Empty stop strings are rejected.
  static Result<StopChecker> create(std::vector<std::string> stop_strings,
                                    std::vector<int32_t> stop_tokens);

  struct Step {
    std::string_view emit;  // text that is safe to show now (valid until the next call)
    bool stop;              // generation must end; `emit` is everything before the stop
  };

  // `text` is what the token added to the output (e.g. from tokenizer::StreamDecoder).
  Step push(int32_t token, std::string_view text);
  // End of generation for another reason (token limit): releases the held-back text.
  std::string_view flush();
  void reset();

  bool is_stop_token(int32_t token) const;
  size_t held_bytes() const { return pending_.size(); }

 private:
  StopChecker(std::vector<std::string> strings, std::vector<int32_t> tokens);
  std::string_view take(size_t n);  // moves pending_[0, n) to out_

  std::vector<std::string> strings_;
  std::vector<int32_t> tokens_;
  size_t max_len_ = 0;
  std::string pending_;  // text not yet emitted
  std::string out_;
};

}  // namespace frugal::sample

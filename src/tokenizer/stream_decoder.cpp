#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace frugal::tokenizer {
namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
}  // namespace

Status StreamDecoder::push(int32_t id, std::string* out) {
  const auto bytes = tok_->token_bytes(id);
  if (!bytes) {
    return invalid_argument("decode: token id " + std::to_string(id) +
                            " is not in the vocabulary of " + std::to_string(tok_->vocab_size()) +
                            " ids");
  }
  if (options_.skip_special && tok_->is_special(id)) return ok_status();
  push_bytes(*bytes, out);
  return ok_status();
}

void StreamDecoder::push_bytes(std::string_view bytes, std::string* out) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  // First complete (or reject) the prefix held back from earlier tokens.
  while (npending_ > 0 && i < n) {
    pending_[npending_++] = b[i++];
    const Utf8Scan s = utf8_scan(pending_, npending_);
    if (s.kind == Utf8Kind::kComplete) {
      out->append(reinterpret_cast<const char*>(pending_), npending_);
      npending_ = 0;
    } else if (s.kind == Utf8Kind::kInvalid) {
      // The held prefix was valid, so the new byte broke it: the prefix is one maximal subpart
      // and the new byte is looked at again on its own.
      out->append(kReplacement);
      npending_ = 0;
      --i;
    }
  }
  while (i < n) {
    if (b[i] < 0x80) {
      size_t j = i + 1;
      while (j < n && b[j] < 0x80) ++j;
      out->append(reinterpret_cast<const char*>(b + i), j - i);
      i = j;
      continue;
    }
    const Utf8Scan s = utf8_scan(b + i, n - i);
    if (s.kind == Utf8Kind::kComplete) {
      out->append(reinterpret_cast<const char*>(b + i), s.len);
    } else if (s.kind == Utf8Kind::kInvalid) {
      out->append(kReplacement);
    } else {
      // An incomplete sequence has at most 3 bytes (a 4-byte one missing its last).
      npending_ = s.len < sizeof(pending_) ? s.len : sizeof(pending_) - 1;
      for (size_t k = 0; k < npending_; ++k) pending_[k] = b[i + k];
    }
    i += s.len;
  }
}

void StreamDecoder::finish(std::string* out) {
  if (npending_ > 0) out->append(kReplacement);
  npending_ = 0;
}

}  // namespace frugal::tokenizer

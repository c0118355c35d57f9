// The client side of a sequence: its handle's take() and the request's Notifier (the scheduler
// side, publish(), is in scheduler.cpp).
#include "serve/scheduler.h"

namespace frugal::serve {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context_full";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "?";
}

void Notifier::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  cv_.notify_all();
}

bool Notifier::wait(uint64_t* seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool woke = cv_.wait_for(lock, timeout, [&] { return count_ != *seen; });
  *seen = count_;
  return woke;
}

bool SequenceHandle::take(SequenceUpdate* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fresh_) return false;
  // The new text, tokens and logits move out (no copy per token); the state stays for the next.
  out->text = std::move(pending_.text);
  out->tokens = std::move(pending_.tokens);
  out->first_logits = std::move(pending_.first_logits);
  pending_.text.clear();
  pending_.tokens.clear();
  pending_.first_logits.clear();
  out->started = pending_.started;
  out->finished = pending_.finished;
  out->reason = pending_.reason;
  out->error = pending_.error;
  out->prompt_tokens = pending_.prompt_tokens;
  out->cached_tokens = pending_.cached_tokens;
  out->completion_tokens = pending_.completion_tokens;
  fresh_ = false;
  return true;
}

}  // namespace frugal::serve

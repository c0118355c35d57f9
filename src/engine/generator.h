// The generation loop of one sequence: prompt ids -> prefill -> sample / decode until a stop
// token (EOS), a stop string or the token limit, streaming valid UTF-8 text through a callback.
//
// The generator keeps its kv cache between calls and the ids that are in it. A new prompt that
// extends those ids (a chat turn after the previous turn and reply) only prefills the new tokens
// (prefix reuse); any other prompt starts a new sequence. The ids are compared, not the text, so
// reuse is exact: the cache holds precisely the state a full prefill of the prompt would build.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "kv/v4_cache.h"
#include "sample/sampler.h"
#include "sample/stop.h"
#include "tokenizer/stream_decoder.h"

namespace frugal::engine {

struct GenerateOptions {
  int64_t max_tokens = 128;  // tokens to generate at most
  sample::SamplerOptions sampling = {};
  std::vector<std::string> stop_strings = {};
  bool stop_at_eos = true;  // config eos_token_id(s) and the tokenizer's eos end generation
};

enum class StopReason : uint8_t { kEos, kStopString, kMaxTokens, kContextFull };
const char* stop_reason_name(StopReason r);

struct GenerationStats {
  int64_t prompt_tokens = 0;     // ids in the prompt
  int64_t reused_tokens = 0;     // of which already in the cache (prefix reuse)
  int64_t generated_tokens = 0;  // sampled tokens, the stop token included
  int64_t decode_steps = 0;      // one-token forward passes
  double prefill_seconds = 0.0;  // forward of the new prompt tokens
  double decode_seconds = 0.0;   // the decode steps (forward + sampling)
  StopReason stop = StopReason::kMaxTokens;
  uint64_t kv_bytes = 0;     // cache memory_report().total() at the end
  uint64_t peak_rss = 0;     // VmHWM
  std::vector<int32_t> ids;  // the generated ids
  double prefill_tokens_per_s() const;
  double decode_tokens_per_s() const;
  // "prompt 12 tok (reused 0), generated 16 tok; prefill 410.2 tok/s, decode 95.1 tok/s; ..."
  std::string summary() const;
};

// Receives text that is safe to show (valid UTF-8, never part of a stop string). An error
// stops generation and is returned by generate().
using TextCallback = std::function<Status(std::string_view)>;

class Generator {
 public:
  // Needs an engine loaded with its tokenizer; `engine` must outlive the generator.
  static Result<std::unique_ptr<Generator>> create(Engine& engine, const GenerateOptions& options);

  Result<GenerationStats> generate(std::span<const int32_t> prompt, const TextCallback& on_text);
  // Forgets the sequence (the next prompt is prefilled from position 0).
  void reset();
  const kv::V4SequenceCache& cache() const { return *cache_; }
  const std::vector<int32_t>& history() const { return history_; }

 private:
  Generator(Engine& engine, GenerateOptions options, sample::Sampler sampler,
            sample::StopChecker stop, std::unique_ptr<kv::V4SequenceCache> cache);
  Status feed(std::span<const int32_t> ids);  // forward, logits of the last position

  Engine* engine_;
  GenerateOptions options_;
  sample::Sampler sampler_;
  sample::StopChecker stop_;
  tokenizer::StreamDecoder decoder_;
  std::unique_ptr<kv::V4SequenceCache> cache_;
  std::vector<int32_t> history_;  // ids in the cache, in order
  std::vector<float> logits_;     // [vocab]
};

}  // namespace frugal::engine

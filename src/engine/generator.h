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
#include "engine/speculative.h"
#include "kv/v4_cache.h"
#include "sample/sampler.h"
#include "sample/stop.h"
#include "tokenizer/stream_decoder.h"

namespace frugal::engine {

// Speculative decoding with the MTP block (engine/speculative.h).
enum class SpecMode : uint8_t {
  kOff,
  kOn,    // always, with draft_tokens drafts per round
  kAuto,  // measured: the first generation times probe_rounds rounds against as many plain
          // steps and keeps speculation only if it produced tokens faster
};
struct SpecOptions {
  SpecMode mode = SpecMode::kOff;
  int32_t draft_tokens = 1;  // k: drafts per round (MTP block chained for k > 1)
  int32_t probe_rounds = 8;  // kAuto
};

struct GenerateOptions {
  int64_t max_tokens = 128;  // tokens to generate at most
  sample::SamplerOptions sampling = {};
  std::vector<std::string> stop_strings = {};
  bool stop_at_eos = true;  // config eos_token_id(s) and the tokenizer's eos end generation
  SpecOptions spec = {};
};

enum class StopReason : uint8_t { kEos, kStopString, kMaxTokens, kContextFull };
const char* stop_reason_name(StopReason r);

struct GenerationStats {
  int64_t prompt_tokens = 0;     // ids in the prompt
  int64_t reused_tokens = 0;     // of which already in the cache (prefix reuse)
  int64_t generated_tokens = 0;  // sampled tokens, the stop token included
  int64_t decode_steps = 0;      // decode forward passes (a speculative round's verify is one)
  int64_t decoded_tokens = 0;    // tokens those produced (more than the steps when speculating)
  double prefill_seconds = 0.0;  // forward of the new prompt tokens
  double decode_seconds = 0.0;   // the decode steps (forward + sampling)
  StopReason stop = StopReason::kMaxTokens;
  uint64_t kv_bytes = 0;     // cache memory_report().total() at the end
  uint64_t peak_rss = 0;     // VmHWM
  std::vector<int32_t> ids;  // the generated ids
  // Speculative decoding: drafts per round (0 = not used in this generation), its counts, and in
  // auto mode the probe's figures (tokens/s of plain steps and of rounds) and its choice.
  int32_t spec_k = 0;
  SpeculationStats spec = {};
  double probe_plain_tokens_per_s = 0.0;
  double probe_spec_tokens_per_s = 0.0;
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
  bool speculating() const { return spec_ != nullptr && auto_state_ != AutoState::kOff; }
  // Decode until a stop, the limit or the context end, from the prefill's logits.
  Status decode(int64_t limit, GenerationStats& st, const TextCallback& on_text, bool& stopped);

  enum class AutoState : uint8_t { kProbing, kOn, kOff };

  Engine* engine_;
  GenerateOptions options_;
  sample::Sampler sampler_;
  sample::StopChecker stop_;
  tokenizer::StreamDecoder decoder_;
  std::unique_ptr<kv::V4SequenceCache> cache_;
  std::vector<int32_t> history_;      // ids in the cache, in order
  std::vector<float> logits_;         // [vocab]
  std::unique_ptr<Speculator> spec_;  // null when speculation is off or the model has no MTP
  AutoState auto_state_ = AutoState::kOn;
  // kAuto's probe, over the generator's life (the first generation, or as many as it takes).
  int64_t probe_spec_tokens_ = 0, probe_spec_rounds_ = 0, probe_plain_steps_ = 0;
  double probe_spec_seconds_ = 0.0, probe_plain_seconds_ = 0.0;
};

}  // namespace frugal::engine

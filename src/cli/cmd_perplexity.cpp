// frugal perplexity -m DIR (-f FILE | --ids FILE) [--ctx N] [--chunks N] [--cache FMT]:
// llama-perplexity style. The ids are cut into non-overlapping chunks of N tokens; each chunk is
// a fresh sequence (prefill from position 0), and the NLL of tokens ctx/2+1 .. ctx-1 (predicted
// from positions ctx/2 .. ctx-2) is summed, as tools/train (heldout_nll) and the official-v4
// runner do, so the numbers compare token for token. Last line: "perplexity: P over T tokens".
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <vector>

#include "cli/engine_flags.h"
#include "cli/command.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "kernels/kernels.h"
#include "kv/v4_cache.h"
#include "model/v4/model.h"

namespace frugal::cli {
namespace {

struct PerplexityOptions {
  std::string model;
  std::string file;
  std::string ids_file;
  int64_t ctx = 256;
  int64_t max_chunks = 0;  // 0 = all
  std::string cache = "fp8";
  bool unclamped_shared = false;
  EngineFlags engine;
  int threads = 0;
};

Result<std::vector<int32_t>> parse_ids(const std::string& text, const std::string& path) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long long v = std::strtoll(word.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > INT32_MAX) {
      return invalid_argument(path + ": '" + word +
                              "' is not a token id (whitespace-separated "
                              "non-negative integers expected)");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

Result<std::vector<int32_t>> input_ids(const PerplexityOptions& o) {
  if (!o.ids_file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(std::string text, read_input(o.ids_file, "ids file"));
    return parse_ids(text, o.ids_file);
  }
  FRUGAL_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, load_tokenizer(o.model));
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_input(o.file, "input file"));
  return tok.encode(text, {});
}

Result<kv::CacheFormat> cache_format(const std::string& name) {
  if (name == "fp8") return kv::CacheFormat::kFp8;
  if (name == "bf16") return kv::CacheFormat::kBf16;
  if (name == "f32") return kv::CacheFormat::kF32;
  return invalid_argument("--cache: unknown format '" + name + "' (fp8, bf16 or f32)");
}

// -sum log softmax(logits)[target] over the second half of one chunk.
double chunk_nll(const std::vector<float>& logits, const int32_t* ids, int64_t ctx, int64_t vocab) {
  double nll = 0.0;
  for (int64_t t = ctx / 2; t < ctx - 1; ++t) {
    const float* row = logits.data() + t * vocab;
    double mx = row[0];
    for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
    nll -= row[ids[t + 1]] - mx - std::log(sum);
  }
  return nll;
}

Status run_perplexity(const PerplexityOptions& o) {
  if (o.ctx < 4) return invalid_argument("--ctx must be at least 4");
  FRUGAL_ASSIGN_OR_RETURN(kv::CacheFormat format, cache_format(o.cache));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int32_t> ids, input_ids(o));
  int64_t chunks = static_cast<int64_t>(ids.size()) / o.ctx;
  if (o.max_chunks > 0) chunks = std::min(chunks, o.max_chunks);
  if (chunks == 0) {
    return invalid_argument("the input has " + std::to_string(ids.size()) +
                            " tokens, fewer than one chunk of --ctx " + std::to_string(o.ctx));
  }
  engine::EngineOptions eo;
  eo.model_dir = o.model;
  eo.threads = o.threads;
  eo.max_seq_len = o.ctx;
  eo.cache = format;
  eo.load_tokenizer = false;
  eo.unclamped_shared_expert = o.unclamped_shared;
  FRUGAL_RETURN_IF_ERROR(apply_engine_flags(o.engine, eo));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> eng, engine::Engine::load(eo));
  v4::Model* model = &eng->model();
  const int64_t vocab = model->config().vocab_size;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<kv::V4SequenceCache> cache,
                          kv::V4SequenceCache::create(model->config(), {.format = format}));
  std::vector<float> logits(static_cast<size_t>(o.ctx * vocab));
  double nll = 0.0;
  int64_t count = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int32_t* chunk = ids.data() + c * o.ctx;
    cache->clear();  // every chunk is a new sequence
    FRUGAL_RETURN_IF_ERROR(model->forward(
        *cache,
        {.ids = std::span(chunk, o.ctx), .logits_mode = v4::LogitsMode::kAll, .logits = logits}));
    nll += chunk_nll(logits, chunk, o.ctx, vocab);
    count += o.ctx - 1 - o.ctx / 2;
    std::fprintf(stderr, "[%lld/%lld] perplexity so far %.4f\n", static_cast<long long>(c + 1),
                 static_cast<long long>(chunks), std::exp(nll / static_cast<double>(count)));
  }
  std::fprintf(stderr, "kv cache (%s) of one %lld-token chunk: %s\n", kv::cache_format_name(format),
               static_cast<long long>(o.ctx), cache->memory_report().to_string().c_str());
  char line[128];
  std::snprintf(line, sizeof(line), "perplexity: %.6f over %lld tokens\n",
                std::exp(nll / static_cast<double>(count)), static_cast<long long>(count));
  return write_output(line);
}

}  // namespace

Command add_perplexity(CLI::App& root) {
  auto o = std::make_shared<PerplexityOptions>();
  o->model = default_model_dir();
  CLI::App* sub = root.add_subcommand(
      "perplexity", "Perplexity of a text over non-overlapping chunks (second half of each)");
  add_model_option(sub, &o->model);
  CLI::Option_group* input = sub->add_option_group("input", "What to score (exactly one)");
  input->add_option("-f,--file", o->file, "Text file, tokenized with the model's tokenizer");
  input->add_option("--ids", o->ids_file, "File of whitespace-separated token ids");
  input->require_option(1);
  sub->add_option("--ctx", o->ctx, "Tokens per chunk")->capture_default_str();
  sub->add_option("--chunks", o->max_chunks, "Score only the first N chunks (0 = all)");
  sub->add_option("--cache", o->cache, "KV cache format: fp8 (584-B entries), bf16 or f32")
      ->capture_default_str();
  sub->add_flag("--unclamped-shared-expert", o->unclamped_shared,
                "Do not clamp the shared expert's SwiGLU (the first published model.py)");
  sub->add_option("-t,--threads", o->threads, "Worker threads (0 = one per CPU)");
  add_engine_flags(sub, &o->engine);
  return {sub, [o] { return run_perplexity(*o); }};
}

}  // namespace frugal::cli

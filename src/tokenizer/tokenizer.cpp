#include "tokenizer/tokenizer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace frugal::tokenizer {
namespace {

Result<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error(path + ": read failed");
  return ss.str();
}

// bos_token / eos_token in tokenizer_config.json: a string or {"content": "..."}.
Status read_special_name(const nlohmann::json& cfg, const char* key, const std::string& path,
                         const Tokenizer& tok, std::optional<int32_t>* out) {
  if (!cfg.contains(key) || cfg[key].is_null()) return ok_status();
  const nlohmann::json& v = cfg[key];
  std::string name;
  if (v.is_string()) {
    name = v.get<std::string>();
  } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    name = v["content"].get<std::string>();
  } else {
    return corrupt(path + ": " + key + ": expected a string or {\"content\": ...}");
  }
  *out = tok.added_token_id(name);
  if (!out->has_value()) {
    return corrupt(path + ": " + key + ": '" + name + "' is not an added token of tokenizer.json");
  }
  return ok_status();
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::from_json(std::string_view json_text, std::string_view source_name) {
  FRUGAL_ASSIGN_OR_RETURN(auto impl, load_tokenizer_impl(json_text, source_name));
  return Tokenizer(std::move(impl));
}

Result<Tokenizer> Tokenizer::load_file(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_whole_file(path));
  return from_json(text, path);
}

Result<Tokenizer> Tokenizer::load_dir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return not_found(dir + ": model directory does not exist");
  }
  const std::string json_path = dir + "/tokenizer.json";
  if (stat(json_path.c_str(), &st) != 0) {
    return not_found(json_path + ": missing (the model directory needs a tokenizer.json)");
  }
  FRUGAL_ASSIGN_OR_RETURN(Tokenizer tok, load_file(json_path));
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (stat(cfg_path.c_str(), &st) == 0) {
    FRUGAL_ASSIGN_OR_RETURN(std::string text, read_whole_file(cfg_path));
    nlohmann::json cfg = nlohmann::json::parse(text, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) {
      return corrupt(cfg_path + ": expected a JSON object");
    }
    FRUGAL_RETURN_IF_ERROR(read_special_name(cfg, "bos_token", cfg_path, tok, &tok.impl_->bos));
    FRUGAL_RETURN_IF_ERROR(read_special_name(cfg, "eos_token", cfg_path, tok, &tok.impl_->eos));
  }
  return tok;
}

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>* out) const {
  const auto* p = reinterpret_cast<const uint8_t*>(piece.data());
  if (piece.size() == 1) {
    out->push_back(byte_ids[p[0]]);
    return;
  }
  if (piece.size() > kCacheMaxPiece) {
    bpe.encode_piece(p, piece.size(), out, &bpe_scratch);
    return;
  }
  auto it = cache.find(piece);
  if (it != cache.end()) {
    const auto [off, n] = it->second;
    out->insert(out->end(), cache_ids.begin() + off, cache_ids.begin() + off + n);
    return;
  }
  const size_t before = out->size();
  bpe.encode_piece(p, piece.size(), out, &bpe_scratch);
  if (cache.size() >= kCacheMaxEntries) {  // simple bound: start over
    cache.clear();
    cache_ids.clear();
  }
  const uint32_t off = uint32_t(cache_ids.size());
  cache_ids.insert(cache_ids.end(), out->begin() + before, out->end());
  cache.emplace(std::string(piece), std::make_pair(off, uint32_t(out->size() - before)));
}

Status Tokenizer::Impl::encode_plain(std::string_view text, size_t begin, size_t end,
                                     std::vector<int32_t>* out) const {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  size_t i = begin;
  while (i < end) {
    // Maximal run of well-formed UTF-8, then (if any) one ill-formed byte as its own piece.
    size_t j = i;
    while (j < end) {
      if (p[j] < 0x80) {
        ++j;
        continue;
      }
      const size_t len = utf8_valid_len(p + j, end - j);
      if (len == 0) break;
      j += len;
    }
    if (j > i) {
      pieces.clear();
      FRUGAL_RETURN_IF_ERROR(
          pre->split(text, Piece{uint32_t(i), uint32_t(j)}, &pieces, &pre_scratch));
      for (const Piece& pc : pieces) encode_piece(text.substr(pc.begin, pc.end - pc.begin), out);
    }
    if (j < end) {
      out->push_back(byte_ids[p[j]]);
      ++j;
    }
    i = j;
  }
  return ok_status();
}

Status Tokenizer::encode_append(std::string_view text, EncodeOptions options,
                                std::vector<int32_t>* out) const {
  if (text.size() >= std::numeric_limits<uint32_t>::max()) {
    return invalid_argument("encode: text of " + std::to_string(text.size()) +
                            " bytes is over the 4 GiB limit");
  }
  const Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mu);
  if (!options.allow_special || im.added_trie.empty()) {
    return im.encode_plain(text, 0, text.size(), out);
  }
  size_t last = 0;
  for (size_t pos = 0; pos < text.size();) {
    int32_t id = -1;
    const size_t len =
        im.added_trie.may_start(uint8_t(text[pos])) ? im.added_trie.longest_at(text, pos, &id) : 0;
    if (len == 0) {
      ++pos;
      continue;
    }
    FRUGAL_RETURN_IF_ERROR(im.encode_plain(text, last, pos, out));
    out->push_back(id);
    pos += len;
    last = pos;
  }
  return im.encode_plain(text, last, text.size(), out);
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, EncodeOptions options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 16);
  FRUGAL_RETURN_IF_ERROR(encode_append(text, options, &ids));
  return ids;
}

std::optional<std::string_view> Tokenizer::token_bytes(int32_t id) const {
  const Impl& im = *impl_;
  if (id < 0 || size_t(id) >= im.token_kind.size() || im.token_kind[id] == 0) return std::nullopt;
  return std::string_view(im.token_data)
      .substr(im.token_offset[id], im.token_offset[id + 1] - im.token_offset[id]);
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->token_kind.size() && impl_->token_kind[id] == 3;
}

Status Tokenizer::decode_append(std::span<const int32_t> ids, DecodeOptions options,
                                std::string* out) const {
  for (size_t k = 0; k < ids.size(); ++k) {
    const auto bytes = token_bytes(ids[k]);
    if (!bytes) {
      return invalid_argument("decode: token id " + std::to_string(ids[k]) + " (position " +
                              std::to_string(k) + ") is not in the vocabulary of " +
                              std::to_string(vocab_size()) + " ids");
    }
    if (options.skip_special && is_special(ids[k])) continue;
    out->append(*bytes);
  }
  return ok_status();
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, DecodeOptions options) const {
  std::string out;
  FRUGAL_RETURN_IF_ERROR(decode_append(ids, options, &out));
  return out;
}

int32_t Tokenizer::vocab_size() const { return int32_t(impl_->token_kind.size()); }
size_t Tokenizer::merge_count() const { return impl_->bpe.merge_count(); }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::regex_jit() const { return impl_->pre->jit(); }

std::optional<int32_t> Tokenizer::added_token_id(std::string_view content) const {
  auto it = impl_->added_by_content.find(content);
  if (it == impl_->added_by_content.end()) return std::nullopt;
  return it->second;
}

}  // namespace frugal::tokenizer

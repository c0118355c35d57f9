// tokenizer.json -> Tokenizer::Impl. Accepts the shape documented in tools/tokenizer/bpe.py and
// rejects anything else with an error that names the field and what was expected.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace frugal::tokenizer {
namespace {

using json = nlohmann::json;

// A model-vocabulary symbol -> its bytes through the inverse byte table; a symbol with a character
// outside the table (e.g. a special-token string that also sits in the vocabulary) decodes to its
// own UTF-8 bytes, as HF's ByteLevel decoder does.
std::string symbol_bytes(const std::string& sym) {
  std::string out;
  const auto* p = reinterpret_cast<const uint8_t*>(sym.data());
  size_t i = 0;
  while (i < sym.size()) {
    const size_t len = utf8_valid_len(p + i, sym.size() - i);
    if (len == 0) return sym;
    const uint32_t cp = utf8_decode(p + i, len);
    if (cp >= kCodePointToByte.size() || kCodePointToByte[cp] < 0) return sym;
    out.push_back(char(kCodePointToByte[cp]));
    i += len;
  }
  return out;
}

std::string byte_symbol(int b) {
  std::string s;
  utf8_append(kByteToCodePoint[b], &s);
  return s;
}

std::string show(const json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

class Loader {
 public:
  Loader(std::string_view name, Tokenizer::Impl* impl) : name_(name), impl_(impl) {}

  Status fail(const std::string& msg) const { return corrupt(name_ + ": " + msg); }

  Status load(const json& root) {
    if (!root.is_object()) return fail("expected a JSON object at the top level");
    FRUGAL_RETURN_IF_ERROR(load_model(root));
    FRUGAL_RETURN_IF_ERROR(check_normalizer(root));
    FRUGAL_RETURN_IF_ERROR(load_pre_tokenizer(root));
    const json* dec = root.contains("decoder") ? &root["decoder"] : nullptr;
    if (dec == nullptr || !dec->is_object() || dec->value("type", "") != "ByteLevel") {
      return fail("decoder.type: expected \"ByteLevel\"");
    }
    FRUGAL_RETURN_IF_ERROR(load_added(root));
    build_token_table();
    return ok_status();
  }

 private:
  Status load_model(const json& root) {
    if (!root.contains("model") || !root["model"].is_object()) {
      return fail("model: expected an object with \"type\": \"BPE\"");
    }
    const json& model = root["model"];
    if (model.value("type", "") != "BPE") return fail("model.type: expected \"BPE\"");
    struct Allowed {
      const char* key;
      std::vector<json> ok;
    };
    const Allowed allowed[] = {{"byte_fallback", {false, nullptr}},
                               {"dropout", {nullptr}},
                               {"unk_token", {nullptr}},
                               {"ignore_merges", {false, nullptr}},
                               {"continuing_subword_prefix", {nullptr, ""}},
                               {"end_of_word_suffix", {nullptr, ""}}};
    for (const Allowed& a : allowed) {
      const json v = model.contains(a.key) ? model[a.key] : json(nullptr);
      if (std::find(a.ok.begin(), a.ok.end(), v) == a.ok.end()) {
        return fail(std::string("model.") + a.key + ": unsupported value " + show(v));
      }
    }
    if (!model.contains("vocab") || !model["vocab"].is_object()) {
      return fail("model.vocab: expected an object of token -> id");
    }
    int64_t max_id = -1;
    for (const auto& [tok, id] : model["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30)) {
        return fail("model.vocab[" + show(json(tok)) + "]: expected an integer id in [0, 2^30)");
      }
      vocab_.emplace(tok, int32_t(id.get<int64_t>()));
      max_id = std::max(max_id, id.get<int64_t>());
    }
    std::vector<int32_t> seen(size_t(max_id + 1), 0);
    for (const auto& [tok, id] : vocab_) {
      if (seen[id]++) return fail("model.vocab: two tokens share id " + std::to_string(id));
    }
    model_symbols_.assign(size_t(max_id + 1), std::string());
    for (const auto& [tok, id] : vocab_) model_symbols_[id] = tok;
    for (int b = 0; b < 256; ++b) {
      auto it = vocab_.find(byte_symbol(b));
      if (it == vocab_.end()) {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "0x%02X", b);
        return fail(std::string("model.vocab: byte ") + buf + " (symbol \"" + byte_symbol(b) +
                    "\") is missing; byte-level BPE needs all 256");
      }
      impl_->byte_ids[b] = it->second;
    }
    impl_->bpe.set_byte_ids(impl_->byte_ids);
    return load_merges(model);
  }

  Status load_merges(const json& model) {
    if (!model.contains("merges") || !model["merges"].is_array()) {
      return fail("model.merges: expected a list");
    }
    const json& merges = model["merges"];
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& e = merges[rank];
      const std::string where = "model.merges[" + std::to_string(rank) + "]";
      std::string left, right;
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          return fail(where + ": expected \"left right\", got " + show(e));
        }
        left = s.substr(0, sp);
        right = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        left = e[0].get<std::string>();
        right = e[1].get<std::string>();
      } else {
        return fail(where + ": expected a string or a pair of strings, got " + show(e));
      }
      int32_t ids[3];
      const std::string parts[3] = {left, right, left + right};
      for (int k = 0; k < 3; ++k) {
        auto it = vocab_.find(parts[k]);
        if (it == vocab_.end()) {
          return fail(where + ": token " + show(json(parts[k])) + " is not in model.vocab");
        }
        ids[k] = it->second;
      }
      if (!impl_->bpe.add_merge(ids[0], ids[1], ids[2])) {
        return fail(where + ": pair " + show(json(left)) + " " + show(json(right)) +
                    " repeats an earlier merge");
      }
    }
    impl_->bpe.finish();
    return ok_status();
  }

  Status check_normalizer(const json& root) {
    if (!root.contains("normalizer") || root["normalizer"].is_null()) return ok_status();
    const json& n = root["normalizer"];
    if (n.is_object() && n.value("type", "") == "Sequence" && n.contains("normalizers") &&
        n["normalizers"] == json::array()) {
      return ok_status();
    }
    return fail("normalizer: only null or an empty Sequence is supported, got " + show(n));
  }

  Status load_pre_tokenizer(const json& root) {
    if (!root.contains("pre_tokenizer") || !root["pre_tokenizer"].is_object()) {
      return fail("pre_tokenizer: expected an object");
    }
    const json& pre = root["pre_tokenizer"];
    json steps = json::array({pre});
    std::string base = "pre_tokenizer";
    if (pre.value("type", "") == "Sequence") {
      steps = pre.contains("pretokenizers") ? pre["pretokenizers"] : json();
      base = "pre_tokenizer.pretokenizers";
      if (!steps.is_array() || steps.empty()) {
        return fail("pre_tokenizer.pretokenizers: expected a non-empty list");
      }
    }
    const json& last = steps.back();
    if (!last.is_object() || last.value("type", "") != "ByteLevel" ||
        last.value("add_prefix_space", true) != false || last.value("use_regex", true) != false) {
      return fail(base + ": the last step must be ByteLevel with add_prefix_space=false, " +
                  "use_regex=false");
    }
    std::vector<std::string> patterns, names;
    for (size_t k = 0; k + 1 < steps.size(); ++k) {
      const json& st = steps[k];
      const std::string where = base + "[" + std::to_string(k) + "]";
      if (!st.is_object() || st.value("type", "") != "Split") {
        return fail(where + ".type: expected \"Split\"");
      }
      const json inv = st.contains("invert") ? st["invert"] : json(nullptr);
      if (st.value("behavior", "") != "Isolated" || !(inv.is_null() || inv == false)) {
        return fail(where + ": expected behavior \"Isolated\" and invert false");
      }
      if (!st.contains("pattern") || !st["pattern"].is_object() ||
          !st["pattern"].contains("Regex") || !st["pattern"]["Regex"].is_string()) {
        return fail(where + ".pattern: expected {\"Regex\": \"...\"}");
      }
      patterns.push_back(st["pattern"]["Regex"].get<std::string>());
      names.push_back(name_ + ": " + where + ".pattern.Regex");
    }
    auto pt = PreTokenizer::create(patterns, names);
    if (!pt.ok()) return corrupt(pt.status().message());
    impl_->pre.emplace(std::move(pt).value());
    return ok_status();
  }

  Status load_added(const json& root) {
    if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return ok_status();
    const json& list = root["added_tokens"];
    if (!list.is_array()) return fail("added_tokens: expected a list");
    for (size_t k = 0; k < list.size(); ++k) {
      const json& t = list[k];
      const std::string where = "added_tokens[" + std::to_string(k) + "]";
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
          t["content"].get<std::string>().empty() || !t.contains("id") ||
          !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 ||
          t["id"].get<int64_t>() >= (1 << 30)) {
        return fail(where + ": expected non-empty \"content\" and an integer \"id\" in [0, 2^30)");
      }
      const std::string content = t["content"].get<std::string>();
      const int32_t id = int32_t(t["id"].get<int64_t>());
      auto v = vocab_.find(content);
      if (v != vocab_.end() && v->second != id) {
        return fail(where + ": " + show(json(content)) + " has id " + std::to_string(id) +
                    " but model.vocab says " + std::to_string(v->second));
      }
      if (size_t(id) < model_symbols_.size() && !model_symbols_[id].empty() &&
          model_symbols_[id] != content) {
        return fail(where + ": id " + std::to_string(id) + " is " + show(json(model_symbols_[id])) +
                    " in model.vocab");
      }
      const bool special = t.contains("special") && t["special"] == true;
      auto [it, fresh] = impl_->added_by_content.emplace(content, id);
      if (!fresh) {  // a later entry with the same content wins, as in a Python dict
        for (AddedToken& a : impl_->added) {
          if (a.content == content) a = {id, content, special};
        }
        it->second = id;
      } else {
        impl_->added.push_back({id, content, special});
      }
    }
    for (const AddedToken& a : impl_->added) impl_->added_trie.insert(a.content, a.id);
    return ok_status();
  }

  void build_token_table() {
    int32_t size = int32_t(model_symbols_.size());
    for (const AddedToken& a : impl_->added) size = std::max(size, a.id + 1);
    std::vector<std::string> bytes(static_cast<size_t>(size));
    impl_->token_kind.assign(size_t(size), 0);
    for (const auto& [tok, id] : vocab_) {
      bytes[id] = symbol_bytes(tok);
      impl_->token_kind[id] = 1;
    }
    for (const AddedToken& a : impl_->added) {
      bytes[a.id] = a.content;
      impl_->token_kind[a.id] = a.special ? 3 : 2;
    }
    impl_->token_offset.assign(size_t(size) + 1, 0);
    for (int32_t i = 0; i < size; ++i) {
      impl_->token_offset[i] = uint32_t(impl_->token_data.size());
      impl_->token_data += bytes[i];
    }
    impl_->token_offset[size] = uint32_t(impl_->token_data.size());
  }

  std::string name_;
  Tokenizer::Impl* impl_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> model_symbols_;  // id -> symbol ("" where the id is unused)
};

}  // namespace

void AddedTokenTrie::insert(std::string_view s, int32_t id) {
  int32_t node = 0;
  for (unsigned char b : s) {
    int32_t child = -1;
    for (const auto& [byte, idx] : nodes_[node].children) {
      if (byte == b) child = idx;
    }
    if (child < 0) {
      child = int32_t(nodes_.size());
      nodes_[node].children.emplace_back(b, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  nodes_[node].id = id;
  first_[uint8_t(s[0])] = true;
}

size_t AddedTokenTrie::longest_at(std::string_view text, size_t pos, int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t child = -1;
    for (const auto& [byte, idx] : nodes_[node].children) {
      if (byte == uint8_t(text[i])) child = idx;
    }
    if (child < 0) break;
    node = child;
    if (nodes_[node].id >= 0) {
      best = i + 1 - pos;
      *id = nodes_[node].id;
    }
  }
  return best;
}

Result<std::unique_ptr<Tokenizer::Impl>> load_tokenizer_impl(std::string_view json_text,
                                                             std::string_view name) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    // Re-parse with exceptions only to get the position of the error for the message.
    try {
      json again = json::parse(json_text);
      (void)again;
    } catch (const json::parse_error& e) {
      return corrupt(std::string(name) + ": not valid JSON (" + e.what() + ")");
    }
    return corrupt(std::string(name) + ": not valid JSON");
  }
  auto impl = std::make_unique<Tokenizer::Impl>();
  Loader loader(name, impl.get());
  try {
    FRUGAL_RETURN_IF_ERROR(loader.load(root));
  } catch (const json::exception& e) {  // a field of an unexpected JSON type
    return corrupt(std::string(name) + ": unexpected JSON type (" + e.what() + ")");
  }
  return impl;
}

}  // namespace frugal::tokenizer

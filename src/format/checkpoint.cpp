// Checkpoint: one safetensors file, or the shards named by model.safetensors.index.json.
//
// The index is read with a SAX handler for the same reasons as the file header
// (safetensors_parse.cpp): a tensor listed twice in weight_map must be an error, not silently
// the last entry, and hostile nesting must not cost memory.
#include <algorithm>
#include <exception>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "format/safetensors.h"
#include "format/text.h"

namespace frugal::format {
namespace {

using json = nlohmann::json;
constexpr int kMaxSkipDepth = 64;  // nesting allowed inside values we ignore
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

class IndexSax {
 public:
  explicit IndexSax(std::string_view path) : path_(path) {}

  bool null() { return on_scalar("null", nullptr, false, 0); }
  bool boolean(bool) { return on_scalar("boolean", nullptr, false, 0); }
  bool number_integer(int64_t v) {
    return on_scalar("number", nullptr, v >= 0, static_cast<uint64_t>(v));
  }
  bool number_unsigned(uint64_t v) { return on_scalar("number", nullptr, true, v); }
  bool number_float(double, const std::string&) { return on_scalar("number", nullptr, false, 0); }
  bool string(std::string& v) { return on_scalar("string", &v, false, 0); }
  bool binary(json::binary_t&) { return fail("index holds binary data"); }
  bool start_object(size_t) { return on_open("object"); }
  bool start_array(size_t) { return on_open("array"); }
  bool end_object() { return on_close(); }
  bool end_array() { return on_close(); }
  bool key(std::string& k);
  bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
    std::string_view what = e.what();
    if (const size_t p = what.find("] "); p != std::string_view::npos) what.remove_prefix(p + 2);
    return fail("not valid JSON (byte " + std::to_string(position) + "): " + std::string(what));
  }

  Status status() const { return status_; }
  bool done() const { return ctx_ == Ctx::kDone; }
  bool has_weight_map() const { return has_weight_map_; }
  SafetensorsIndex take() { return std::move(index_); }

 private:
  enum class Ctx { kTop, kRoot, kWeightMap, kMetadata, kSkip, kDone };
  enum class RootKey { kOther, kWeightMap, kMetadata };

  bool fail(const std::string& what) {
    if (status_.ok()) status_ = corrupt(std::string(path_) + ": " + what);
    return false;
  }
  bool on_scalar(const char* kind, const std::string* s, bool is_uint, uint64_t u);
  bool on_open(const char* kind);
  bool on_close();
  bool skip(Ctx back) {  // ignore the container that just opened, then resume at `back`
    skip_back_ = back;
    skip_depth_ = 1;
    ctx_ = Ctx::kSkip;
    return true;
  }

  std::string_view path_;
  Status status_;
  Ctx ctx_ = Ctx::kTop;
  RootKey root_key_ = RootKey::kOther;
  bool has_weight_map_ = false, has_metadata_ = false;
  std::string key_;
  Ctx skip_back_ = Ctx::kRoot;
  int skip_depth_ = 0;
  SafetensorsIndex index_;
};

bool IndexSax::key(std::string& k) {
  if (ctx_ == Ctx::kRoot) {
    root_key_ = RootKey::kOther;
    if (k == "weight_map") {
      if (has_weight_map_) return fail("\"weight_map\" appears twice");
      root_key_ = RootKey::kWeightMap;
    } else if (k == "metadata") {
      if (has_metadata_) return fail("\"metadata\" appears twice");
      root_key_ = RootKey::kMetadata;
    }
  } else if (ctx_ == Ctx::kWeightMap) {
    if (k.empty()) return fail("weight_map lists an empty tensor name");
    if (index_.weight_map.count(k) != 0) {
      return fail("tensor " + quote(k) + " is listed twice in weight_map");
    }
  }
  key_ = k;
  return true;
}

bool IndexSax::on_scalar(const char* kind, const std::string* s, bool is_uint, uint64_t u) {
  switch (ctx_) {
    case Ctx::kTop:
      return fail(std::string("index is a JSON ") + kind +
                  ", expected an object with a \"weight_map\"");
    case Ctx::kRoot:
      if (root_key_ == RootKey::kWeightMap) {
        return fail(std::string("\"weight_map\" is a JSON ") + kind +
                    ", expected an object of tensor name to shard file name");
      }
      if (root_key_ == RootKey::kMetadata) {
        return fail(std::string("\"metadata\" is a JSON ") + kind + ", expected an object");
      }
      return true;  // another top-level key: ignored
    case Ctx::kWeightMap:
      if (s == nullptr) {
        return fail("weight_map: tensor " + quote(key_) + " maps to a JSON " + kind +
                    ", expected a shard file name");
      }
      if (!is_plain_file_name(*s)) {
        return fail(
            "weight_map: tensor " + quote(key_) + ": shard " + quote(*s) +
            " is not a plain file name in the index's directory (no '/', '\\', '.' or '..')");
      }
      index_.weight_map.emplace(key_, *s);
      return true;
    case Ctx::kMetadata:
      if (key_ == "total_size" && is_uint) index_.total_size = u;
      return true;
    case Ctx::kSkip:
      return true;
    case Ctx::kDone:
      break;
  }
  return fail("unexpected value after the index object");
}

bool IndexSax::on_open(const char* kind) {
  const bool is_array = kind[0] == 'a';
  switch (ctx_) {
    case Ctx::kTop:
      if (is_array) return fail("index is a JSON array, expected an object with a \"weight_map\"");
      ctx_ = Ctx::kRoot;
      return true;
    case Ctx::kRoot:
      if (root_key_ == RootKey::kWeightMap) {
        if (is_array) {
          return fail(
              "\"weight_map\" is a JSON array, expected an object of tensor name to shard "
              "file name");
        }
        has_weight_map_ = true;
        ctx_ = Ctx::kWeightMap;
        return true;
      }
      if (root_key_ == RootKey::kMetadata) {
        if (is_array) return fail("\"metadata\" is a JSON array, expected an object");
        has_metadata_ = true;
        ctx_ = Ctx::kMetadata;
        return true;
      }
      return skip(Ctx::kRoot);
    case Ctx::kWeightMap:
      return fail("weight_map: tensor " + quote(key_) + " maps to a JSON " + kind +
                  ", expected a shard file name");
    case Ctx::kMetadata:
      return skip(Ctx::kMetadata);
    case Ctx::kSkip:
      if (++skip_depth_ > kMaxSkipDepth) {
        return fail("nests deeper than " + std::to_string(kMaxSkipDepth) + " levels");
      }
      return true;
    case Ctx::kDone:
      break;
  }
  return fail("unexpected value after the index object");
}

bool IndexSax::on_close() {
  switch (ctx_) {
    case Ctx::kRoot:
      ctx_ = Ctx::kDone;
      return true;
    case Ctx::kWeightMap:
    case Ctx::kMetadata:
      ctx_ = Ctx::kRoot;
      return true;
    case Ctx::kSkip:
      if (--skip_depth_ == 0) ctx_ = skip_back_;
      return true;
    default:
      return fail("unbalanced JSON");  // unreachable: the parser balances brackets
  }
}

// Opens one file as the whole checkpoint.
Status add_single(const std::string& path, std::vector<std::unique_ptr<SafetensorsFile>>& files,
                  std::map<std::string, const TensorInfo*, std::less<>>& by_name) {
  FRUGAL_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(path));
  files.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
  for (const auto& t : files.back()->tensors()) by_name.emplace(t.name, &t);
  return ok_status();
}

}  // namespace

Result<SafetensorsIndex> parse_safetensors_index(std::string_view text, std::string_view path) {
  const std::string p(path);
  if (text.size() > kMaxIndexBytes) {
    return corrupt(p + ": index is " + std::to_string(text.size()) + " bytes, over the limit of " +
                   std::to_string(kMaxIndexBytes));
  }
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos) {
    const size_t from = bad > 48 ? bad - 48 : 0;
    return corrupt(p + ": not valid UTF-8 at byte " + std::to_string(bad) + ", after " +
                   quote(text.substr(from, bad - from + 1)));
  }
  IndexSax sax(path);
  try {
    const bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                                    /*strict=*/true);
    if (!sax.status().ok()) return sax.status();
    if (!ok || !sax.done()) return corrupt(p + ": not a complete JSON object");
  } catch (const std::bad_alloc&) {
    return resource_exhausted(p + ": out of memory while parsing the index");
  } catch (const std::exception& e) {
    return corrupt(p + ": not valid JSON: " + e.what());
  }
  if (!sax.has_weight_map()) return corrupt(p + ": has no \"weight_map\" object");
  SafetensorsIndex index = sax.take();
  if (index.weight_map.empty()) return corrupt(p + ": \"weight_map\" lists no tensors");
  return index;
}

Result<Checkpoint> Checkpoint::open(const std::string& path) {
  namespace fs = std::filesystem;
  Checkpoint ck;
  ck.root_ = path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return not_found(path + ": no such file or directory");
  if (!fs::is_directory(st)) {
    FRUGAL_RETURN_IF_ERROR(add_single(path, ck.files_, ck.by_name_));
    return ck;
  }
  const fs::path dir(path);
  const std::string index_path = (dir / kIndexName).string();
  if (!fs::exists(dir / kIndexName, ec)) {
    if (!fs::exists(dir / kSingleName, ec)) {
      return not_found(path + ": directory holds neither " + kIndexName + " nor " + kSingleName);
    }
    FRUGAL_RETURN_IF_ERROR(add_single((dir / kSingleName).string(), ck.files_, ck.by_name_));
    return ck;
  }

  FRUGAL_ASSIGN_OR_RETURN(MmapFile index_map, MmapFile::open(index_path));
  const std::string_view text(reinterpret_cast<const char*>(index_map.data()), index_map.size());
  FRUGAL_ASSIGN_OR_RETURN(SafetensorsIndex index, parse_safetensors_index(text, index_path));

  // Each shard once, in name order, with one of its tensors for messages.
  std::map<std::string, std::string> shard_example;
  for (const auto& [tensor, shard] : index.weight_map) shard_example.emplace(shard, tensor);
  std::map<std::string, const SafetensorsFile*> shard_file;
  for (const auto& [shard, example] : shard_example) {
    const fs::path shard_path = dir / shard;
    if (!fs::exists(shard_path, ec)) {
      return not_found(index_path + ": shard " + quote(shard) + " is missing (it should hold " +
                       quote(example) + ")");
    }
    FRUGAL_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(shard_path.string()));
    ck.files_.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
    shard_file[shard] = ck.files_.back().get();
  }

  // Every tensor of every shard must be listed, and listed under that shard.
  for (const auto& [shard, file] : shard_file) {
    for (const auto& t : file->tensors()) {
      const auto it = index.weight_map.find(t.name);
      if (it == index.weight_map.end()) {
        return corrupt(file->path() + ": tensor " + quote(t.name) + " is not listed in " +
                       index_path);
      }
      if (it->second != shard) {
        const bool also_there = shard_file[it->second]->find(t.name) != nullptr;
        return corrupt(index_path + ": tensor " + quote(t.name) +
                       (also_there
                            ? " is in two shards, " + quote(it->second) + " and " + quote(shard)
                            : " is in shard " + quote(shard)) +
                       "; the index lists it in " + quote(it->second));
      }
      ck.by_name_.emplace(t.name, &t);
    }
  }
  // And every listed tensor must be where the index says.
  for (const auto& [tensor, shard] : index.weight_map) {
    if (ck.by_name_.count(tensor) == 0) {
      return corrupt(index_path + ": tensor " + quote(tensor) + " is listed in shard " +
                     quote(shard) + " but " + shard_file[shard]->path() + " does not hold it");
    }
  }
  if (index.total_size && *index.total_size != ck.total_bytes()) {
    FRUGAL_LOG_WARN("%s: metadata.total_size is %llu but the tensors hold %llu bytes",
                    index_path.c_str(), static_cast<unsigned long long>(*index.total_size),
                    static_cast<unsigned long long>(ck.total_bytes()));
  }
  return ck;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const TensorInfo*> Checkpoint::tensors() const {
  std::vector<const TensorInfo*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) out.push_back(t);
  return out;
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, t] : by_name_) n += t->size;
  return n;
}

}  // namespace frugal::format

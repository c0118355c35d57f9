#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdio>
#include <utility>

#include "tokenizer/utf8.h"

namespace frugal::tokenizer {
namespace {

struct DeltaRange {
  char cls;
  uint32_t first, last;
};
constexpr DeltaRange kDelta[] = {
#include "tokenizer/unicode_delta.inc"
};

// Unicode White_Space, the set Python's `regex` matches with \s (25 code points).
constexpr const char* kWhiteSpaceItems =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}";

std::string delta_items(char cls) {
  std::string out;
  char buf[48];
  for (const DeltaRange& d : kDelta) {
    if (d.cls != cls) continue;
    std::snprintf(buf, sizeof(buf), "\\x{%X}-\\x{%X}", unsigned(d.first), unsigned(d.last));
    out += buf;
  }
  return out;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string rewrite_pattern_for_pcre2(std::string_view pat) {
  std::string out;
  out.reserve(pat.size() * 2);
  bool in_class = false;
  size_t i = 0;
  while (i < pat.size()) {
    const char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      const char e = pat[i + 1];
      if (e == 'Q') {  // \Q...\E: literal text, copied as is
        size_t end = pat.find("\\E", i + 2);
        end = end == std::string_view::npos ? pat.size() : end + 2;
        out.append(pat.substr(i, end - i));
        i = end;
        continue;
      }
      if ((e == 'p' || e == 'P') && i + 2 < pat.size() && pat[i + 2] == '{') {
        const size_t close = pat.find('}', i + 3);
        if (close != std::string_view::npos) {
          const std::string_view name = pat.substr(i + 3, close - i - 3);
          const bool known =
              name.size() == 1 && std::string_view("LNPSM").find(name[0]) != std::string_view::npos;
          if (known && e == 'p') {
            const std::string items = "\\p{" + std::string(name) + "}" + delta_items(name[0]);
            out += in_class ? items : "[" + items + "]";
            i = close + 1;
            continue;
          }
          if (known && e == 'P' && !in_class) {
            out += "[^\\p{" + std::string(name) + "}" + delta_items(name[0]) + "]";
            i = close + 1;
            continue;
          }
          out.append(pat.substr(i, close + 1 - i));  // other properties: unchanged
          i = close + 1;
          continue;
        }
      }
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceItems) : "[" + std::string(kWhiteSpaceItems) + "]";
        i += 2;
        continue;
      }
      if (e == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
        i += 2;
        continue;
      }
      out.append(pat.substr(i, 2));  // any other escape, including \\ and \[
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < pat.size() && pat[i] == '^') out += pat[i++];
      if (i < pat.size() && pat[i] == ']') out += pat[i++];  // a leading ] is a literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < pat.size() && pat[i + 1] == ':') {  // [:alpha:]
      const size_t end = pat.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(pat.substr(i, end + 2 - i));
        i = end + 2;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::string name;
  ~Regex() { pcre2_code_free(code); }
};

struct PreTokenizerScratch::Impl {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  std::vector<Piece> a, b;
  Impl() {
    md = pcre2_match_data_create(1, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (mctx && stack) pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
  ~Impl() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

PreTokenizerScratch::PreTokenizerScratch() : impl_(std::make_unique<Impl>()) {}
PreTokenizerScratch::~PreTokenizerScratch() = default;

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

size_t PreTokenizer::size() const { return regexes_.size(); }

bool PreTokenizer::jit() const {
  for (const auto& r : regexes_) {
    if (!r->jit) return false;
  }
  return true;
}

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& patterns,
                                          const std::vector<std::string>& names) {
  PreTokenizer pt;
  for (size_t k = 0; k < patterns.size(); ++k) {
    auto re = std::make_unique<Regex>();
    re->name = k < names.size() ? names[k] : "regex " + std::to_string(k);
    const std::string rewritten = rewrite_pattern_for_pcre2(patterns[k]);
    int err = 0;
    PCRE2_SIZE err_off = 0;
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                             PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
    if (re->code == nullptr) {
      return invalid_argument(re->name + ": regex does not compile (" + pcre2_message(err) + ")");
    }
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    pt.regexes_.push_back(std::move(re));
  }
  return pt;
}

Status PreTokenizer::split_one(const Regex& re, std::string_view text, Piece piece,
                               std::vector<Piece>* out, PreTokenizerScratch* scratch) const {
  PreTokenizerScratch::Impl& s = *scratch->impl_;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
  const size_t len = piece.end - piece.begin;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
  size_t last = 0;   // end of what has been emitted
  size_t start = 0;  // where the next search starts
  uint32_t options = 0;
  auto emit = [&](size_t b, size_t e) {
    if (e > b) out->push_back({uint32_t(piece.begin + b), uint32_t(piece.begin + e)});
  };
  while (start <= len) {
    const int rc = re.jit ? pcre2_jit_match(re.code, subject, len, start, options, s.md, s.mctx)
                          : pcre2_match(re.code, subject, len, start, options | PCRE2_NO_UTF_CHECK,
                                        s.md, s.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (options == 0 || start >= len) break;
      // No non-empty match at `start` after an empty one: step over one character, as
      // Python's finditer does, and search normally from there.
      const auto* p = reinterpret_cast<const uint8_t*>(subject);
      start += utf8_valid_len(p + start, len - start);
      options = 0;
      continue;
    }
    if (rc < 0) {
      return internal_error(re.name + ": regex failed at byte " +
                            std::to_string(piece.begin + start) + " (" + pcre2_message(rc) + ")");
    }
    const size_t b = ov[0], e = ov[1];
    emit(last, b);
    emit(b, e);
    last = e;
    start = e;
    // After an empty match, the next match at the same place must be non-empty.
    options = b == e ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
  }
  emit(last, len);
  return ok_status();
}

Status PreTokenizer::split(std::string_view text, Piece run, std::vector<Piece>* out,
                           PreTokenizerScratch* scratch) const {
  if (run.end <= run.begin) return ok_status();
  if (regexes_.empty()) {
    out->push_back(run);
    return ok_status();
  }
  std::vector<Piece>& cur = scratch->impl_->a;
  std::vector<Piece>& nxt = scratch->impl_->b;
  cur.assign(1, run);
  for (size_t k = 0; k < regexes_.size(); ++k) {
    std::vector<Piece>* dst = k + 1 == regexes_.size() ? out : &nxt;
    if (dst == &nxt) nxt.clear();
    for (const Piece& p : cur) {
      FRUGAL_RETURN_IF_ERROR(split_one(*regexes_[k], text, p, dst, scratch));
    }
    if (dst == &nxt) std::swap(cur, nxt);
  }
  return ok_status();
}

}  // namespace frugal::tokenizer

// Every kind of broken safetensors file gets its own specific error naming the file and tensor.
// The files are built byte by byte (st_test_util.h) and opened through SafetensorsFile::open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "format/safetensors.h"
#include "st_test_util.h"

namespace frugal::format {
namespace {

using testing::entry;
using testing::header_of;
using testing::st_file;
using testing::TempDir;
using testing::with_length;

class Corrupt : public ::testing::Test {
 protected:
  // Writes `bytes` as a file, opens it, and checks the error names the file and holds `parts`.
  void expect(std::string_view bytes, std::initializer_list<std::string_view> parts,
              StatusCode code = StatusCode::kCorrupt) {
    const std::string path = dir_.file("model.safetensors");
    testing::write_file(path, bytes);
    auto f = SafetensorsFile::open(path);
    ASSERT_FALSE(f.ok()) << "opened a corrupt file";
    testing::expect_error(f.status(), code, parts);
    EXPECT_EQ(f.status().message().rfind(path + ": ", 0), 0u) << f.status().to_string();
  }
  // Opens `bytes`, which must be valid.
  Result<SafetensorsFile> open_ok(std::string_view bytes) {
    const std::string path = dir_.file("model.safetensors");
    testing::write_file(path, bytes);
    return SafetensorsFile::open(path);
  }

  TempDir dir_;
};

const std::string k24(24, '\x01');  // buffer for an F32 [2, 3]

TEST_F(Corrupt, FileShorterThanLengthField) {
  expect(std::string_view("\x05\x00\x00", 3),
         {"file is 3 bytes, too short for the 8-byte header length"});
  expect("", {"file is 0 bytes"});
}

TEST_F(Corrupt, HeaderCutShort) {
  const std::string full = st_file(header_of({entry("w", "F32", "[2,3]", 0, 24)}), k24);
  expect(full.substr(0, 20), {"header length 57 runs past the end of the file (12 bytes follow"});
}

TEST_F(Corrupt, HeaderLengthPastEndOfFile) {
  expect(with_length(1000, "{}"), {"header length 1000 runs past the end of the file"});
}

TEST_F(Corrupt, HeaderOfTerabytesFailsFast) {
  const auto start = std::chrono::steady_clock::now();
  expect(with_length(uint64_t{1} << 40, "{}"),
         {"header length 1099511627776 is over the limit of 104857600 bytes"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(Corrupt, HeaderOverLimitInsideALargeSparseFile) {
  // A 200 MiB sparse file whose length field (150 MiB) fits the file but not the limit: refused
  // from the length alone, without reading (or the disk holding) the header.
  const std::string path = dir_.file("model.safetensors");
  const std::string head = with_length(150ull << 20, "");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, head.data(), head.size()), 8);
  ASSERT_EQ(::ftruncate(fd, 200ll << 20), 0);
  ::close(fd);
  auto f = SafetensorsFile::open(path);
  testing::expect_error(f.status(), StatusCode::kCorrupt,
                        {path, "header length 157286400 is over the limit"});
}

TEST_F(Corrupt, BufferCutShort) {
  const std::string full = st_file(header_of({entry("layers.0.w", "F32", "[2,3]", 0, 24)}), k24);
  expect(full.substr(0, full.size() - 10),
         {"tensor 'layers.0.w': data_offsets [0, 24] end past the data buffer of 14 bytes",
          "truncated?"});
}

TEST_F(Corrupt, HeaderNotJson) {
  expect(st_file("{\"w\": {\"dtype\": \"F32\",,}}"), {"header is not valid JSON"});
  expect(st_file("hello"), {"header is not valid JSON"});
  expect(st_file(""), {"header is not valid JSON"});
  expect(st_file("{} trailing"), {"header is not valid JSON"});
}

TEST_F(Corrupt, HeaderNotAnObject) {
  expect(st_file("[1, 2]"), {"header is a JSON array, expected an object"});
  expect(st_file("42"), {"header is a JSON number, expected an object"});
  expect(st_file("\"x\""), {"header is a JSON string, expected an object"});
}

TEST_F(Corrupt, NonUtf8Name) {
  expect(st_file(header_of({entry("layers.0.w\xff", "F32", "[2,3]", 0, 24)}), k24),
         {"header is not valid UTF-8 at byte 12", "layers.0.w\\xff"});
  // Overlong encoding of '/' and a UTF-16 surrogate are ill-formed too.
  expect(st_file(header_of({entry("a\xc0\xaf", "F32", "[2,3]", 0, 24)}), k24), {"not valid UTF-8"});
  expect(st_file(header_of({entry("a\xed\xa0\x80", "F32", "[2,3]", 0, 24)}), k24),
         {"not valid UTF-8"});
  // A lone surrogate escape decodes to no valid UTF-8 either.
  expect(st_file(header_of({entry("a\\ud800", "F32", "[2,3]", 0, 24)}), k24),
         {"header is not valid JSON", "surrogate"});
}

TEST_F(Corrupt, DuplicateName) {
  expect(st_file(header_of({entry("w", "F32", "[2,3]", 0, 24), entry("w", "F32", "[2,3]", 24, 48)}),
                 k24 + k24),
         {"tensor 'w' appears twice in the header"});
}

TEST_F(Corrupt, EmptyName) {
  expect(st_file(header_of({entry("", "F32", "[2,3]", 0, 24)}), k24), {"a tensor name is empty"});
}

TEST_F(Corrupt, UnknownDtype) {
  expect(st_file(header_of({entry("layers.0.attn.wq_a.weight", "F7", "[2,3]", 0, 24)}), k24),
         {"tensor 'layers.0.attn.wq_a.weight': unknown dtype 'F7' (expected one of F32, BF16"});
  // A dtype the format defines but frugal does not read is "unsupported", not "corrupt".
  expect(st_file(header_of({entry("w", "F64", "[3]", 0, 24)}), k24),
         {"tensor 'w': dtype 'F64' is not supported"}, StatusCode::kUnsupported);
  expect(st_file("{\"w\":{\"dtype\":7,\"shape\":[],\"data_offsets\":[0,1]}}", "x"),
         {"tensor 'w': 'dtype' is a JSON number, expected a string"});
}

TEST_F(Corrupt, NegativeOrNonIntegerShape) {
  expect(st_file(header_of({entry("w", "F32", "[2,-3]", 0, 24)}), k24),
         {"tensor 'w': shape[1] is -3, expected a non-negative integer"});
  expect(st_file(header_of({entry("w", "F32", "[2.5]", 0, 24)}), k24),
         {"tensor 'w': shape[0] is 2.5, expected a non-negative integer"});
  expect(st_file(header_of({entry("w", "F32", "[\"6\"]", 0, 24)}), k24),
         {"tensor 'w': shape[0] is '6', expected a non-negative integer"});
  expect(st_file(header_of({entry("w", "F32", "[[6]]", 0, 24)}), k24),
         {"tensor 'w': shape[0] is a JSON array, expected a non-negative integer"});
  expect(st_file(header_of({entry("w", "F32", "{}", 0, 24)}), k24),
         {"tensor 'w': 'shape' is a JSON object, expected an array"});
  expect(st_file(header_of({entry("w", "F32",
                                  "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                                  "1,1,1,1,1,1,1,1]",
                                  0, 4)}),
                 "abcd"),
         {"tensor 'w': shape has more than 32 dimensions"});
}

TEST_F(Corrupt, ShapeOverflow) {
  expect(st_file(header_of({entry("w", "U8", "[4294967296,4294967296]", 0, 24)}), k24),
         {"tensor 'w': shape [4294967296, 4294967296] has more than 2^64 elements"});
  expect(st_file(header_of({entry("w", "F32", "[4611686018427387904]", 0, 24)}), k24),
         {"tensor 'w': F32 [4611686018427387904] needs more than 2^64 bytes"});
  expect(st_file(header_of({entry("w", "F32", "[9223372036854775808]", 0, 24)}), k24),
         {"tensor 'w': shape[0] is 9223372036854775808, expected a non-negative integer"});
}

TEST_F(Corrupt, OffsetsOutOfRange) {
  expect(st_file(header_of({entry("w", "F32", "[2,3]", 1000, 1024)}), k24),
         {"tensor 'w': data_offsets [1000, 1024] end past the data buffer of 24 bytes"});
  expect(st_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", k24),
         {"tensor 'w': data_offsets[0] is -4, expected a non-negative integer"});
  expect(st_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", k24),
         {"tensor 'w': 'data_offsets' has more than 2 entries"});
  expect(st_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", k24),
         {"tensor 'w': 'data_offsets' has 1 entries, expected [begin, end]"});
}

TEST_F(Corrupt, BeginAfterEnd) {
  expect(st_file(header_of({entry("w", "F32", "[2,3]", 24, 0)}), k24),
         {"tensor 'w': data_offsets [24, 0] begin after end"});
}

TEST_F(Corrupt, OverlappingTensors) {
  expect(st_file(header_of({entry("a", "F32", "[2,3]", 0, 24), entry("b", "F32", "[2,3]", 16, 40)}),
                 k24 + k24),
         {"tensors 'a' data_offsets [0, 24] and 'b' data_offsets [16, 40] overlap"});
  // Same range twice.
  expect(
      st_file(header_of({entry("b", "F32", "[2,3]", 0, 24), entry("a", "I32", "[6]", 0, 24)}), k24),
      {"overlap"});
}

TEST_F(Corrupt, SizeNotMatchingDtypeAndShape) {
  expect(st_file(header_of({entry("layers.0.attn.wq_a.weight", "F8_E4M3", "[1024,4096]", 0, 100)}),
                 std::string(100, '\0')),
         {"tensor 'layers.0.attn.wq_a.weight': data_offsets [0, 100] hold 100 bytes but F8_E4M3 "
          "[1024, 4096] needs 4194304"});
}

TEST_F(Corrupt, MetadataNotStringToString) {
  expect(st_file("{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}"),
         {"\"__metadata__\" value 'n' is a JSON number (1), expected a string"});
  expect(st_file("{\"__metadata__\":{\"x\":{\"y\":\"z\"}}}"),
         {"\"__metadata__\" value 'x' is a JSON object, expected a string"});
  expect(st_file("{\"__metadata__\":[\"pt\"]}"),
         {"\"__metadata__\" is a JSON array, expected an object of string to string"});
  expect(st_file("{\"__metadata__\":\"pt\"}"), {"\"__metadata__\" is a JSON string"});
  expect(st_file("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}"),
         {"\"__metadata__\" key 'a' appears twice"});
  expect(st_file("{\"__metadata__\":{},\"__metadata__\":{}}"), {"\"__metadata__\" appears twice"});
}

TEST_F(Corrupt, EntryNotDtypeShapeOffsets) {
  expect(st_file("{\"w\":\"F32\"}"), {"tensor 'w': entry is a JSON string, expected an object"});
  expect(st_file("{\"w\":[]}"), {"tensor 'w': entry is a JSON array, expected an object"});
  expect(st_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}"),
         {"tensor 'w': missing 'data_offsets'"});
  expect(st_file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "abcd"),
         {"tensor 'w': missing 'shape'"});
  expect(st_file("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"),
         {"tensor 'w': missing 'dtype'"});
  expect(
      st_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", "abcd"),
      {"tensor 'w': unexpected key 'x'"});
  expect(
      st_file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
              "abcd"),
      {"tensor 'w': key 'dtype' appears twice"});
}

TEST_F(Corrupt, DeepNestingStopsAtOnce) {
  // 100k nested arrays in a tensor entry: refused at the first level the format does not allow.
  const std::string deep = "{\"w\":{\"shape\":" + std::string(100000, '[') + "}}";
  expect(st_file(deep), {"tensor 'w': shape[0] is a JSON array"});
}

TEST_F(Corrupt, GapsAreAllowed) {
  // A gap between tensors and trailing bytes: readable, reported as gap bytes.
  const std::string header =
      header_of({entry("a", "F32", "[2]", 0, 8), entry("b", "F32", "[2]", 16, 24)});
  auto f = open_ok(st_file(header, k24 + "tail"));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto parsed = parse_safetensors(f->mapping().bytes(), f->path());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->gap_bytes, 8u + 4u);
  EXPECT_EQ(f->find("b")->offset, 8 + header.size() + 16);
}

TEST_F(Corrupt, EmptyTensorsOverlapNothing) {
  const std::string header =
      header_of({entry("a", "F32", "[2,3]", 0, 24), entry("e", "BF16", "[0,7]", 8, 8),
                 entry("s", "U8", "[]", 23, 24)});
  expect(st_file(header, k24), {"tensors 'a' data_offsets [0, 24] and 's' data_offsets [23, 24]"});
  auto f = open_ok(st_file(
      header_of({entry("a", "F32", "[2,3]", 0, 24), entry("e", "BF16", "[0,7]", 8, 8)}), k24));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->find("e")->size, 0u);
}

TEST_F(Corrupt, ParserWorksOnSpans) {
  // The span parser itself (what the fuzzer calls) reports the same way, with the given name.
  const std::string bytes = st_file(header_of({entry("w", "F32", "[2,3]", 0, 24)}), k24);
  const auto span = std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
  auto ok = parse_safetensors(span, "mem");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  ASSERT_EQ(ok->tensors.size(), 1u);
  EXPECT_EQ(ok->tensors[0].data.data(), span.data() + 8 + ok->header_bytes);
  auto bad = parse_safetensors(span.first(span.size() - 1), "mem");
  testing::expect_error(bad.status(), StatusCode::kCorrupt, {"mem: tensor 'w'", "end past"});
}

}  // namespace
}  // namespace frugal::format

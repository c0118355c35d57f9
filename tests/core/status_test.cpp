#include "core/status.h"

#include <gtest/gtest.h>

namespace frugal {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("value " + std::to_string(v) + " must be > 0");
  return v;
}

Result<int> twice(int v) {
  FRUGAL_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_all(int a, int b) {
  FRUGAL_RETURN_IF_ERROR(parse_positive(a).status());
  FRUGAL_RETURN_IF_ERROR(parse_positive(b).status().with_context("second"));
  return ok_status();
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(Status, MessageAndContext) {
  Status s = corrupt("tensor 'x': size mismatch").with_context("model.safetensors");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_EQ(s.to_string(), "corrupt: model.safetensors: tensor 'x': size mismatch");
}

TEST(Result, ValueAndError) {
  auto r = twice(21);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
  auto e = twice(-1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.status().message(), "value -1 must be > 0");
}

TEST(Result, ReturnIfErrorAddsContext) {
  EXPECT_TRUE(check_all(1, 2).ok());
  Status s = check_all(1, 0);
  EXPECT_EQ(s.message(), "second: value 0 must be > 0");
}

TEST(Result, OkStatusIsNotAValue) {
  Result<int> r{Status()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace frugal

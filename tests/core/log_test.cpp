#include "core/log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace frugal {
namespace {

TEST(Log, ParsesLevelNames) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("off"), LogLevel::kOff);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(parse_log_level("DEBUG"), std::nullopt);
  EXPECT_EQ(parse_log_level("verbose"), std::nullopt);
  EXPECT_EQ(parse_log_level("info "), std::nullopt);
}

// Restores the process-wide level and FRUGAL_LOG after each test.
class LogLevelTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = log_level(); }
  void TearDown() override {
    set_log_level(saved_);
    unsetenv("FRUGAL_LOG");
  }
  LogLevel saved_ = LogLevel::kWarn;
};

TEST_F(LogLevelTest, EnvironmentSetsLevel) {
  set_log_level(LogLevel::kWarn);
  setenv("FRUGAL_LOG", "debug", 1);
  init_log_level_from_env();
  EXPECT_EQ(log_level(), LogLevel::kDebug);
  setenv("FRUGAL_LOG", "nonsense", 1);  // reported and ignored
  testing::internal::CaptureStderr();
  init_log_level_from_env();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(log_level(), LogLevel::kDebug);
  EXPECT_NE(err.find("nonsense"), std::string::npos) << err;
  unsetenv("FRUGAL_LOG");
  init_log_level_from_env();
  EXPECT_EQ(log_level(), LogLevel::kDebug);
}

TEST_F(LogLevelTest, MessagesBelowLevelAreDropped) {
  set_log_level(LogLevel::kWarn);
  testing::internal::CaptureStderr();
  FRUGAL_LOG_INFO("hidden %d", 1);
  FRUGAL_LOG_WARN("shown %d", 2);
  FRUGAL_LOG_ERROR("also %s", "shown");
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("hidden"), std::string::npos) << err;
  EXPECT_NE(err.find("warning: shown 2"), std::string::npos) << err;
  EXPECT_NE(err.find("error: also shown"), std::string::npos) << err;
  set_log_level(LogLevel::kOff);
  testing::internal::CaptureStderr();
  FRUGAL_LOG_ERROR("silenced");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace frugal

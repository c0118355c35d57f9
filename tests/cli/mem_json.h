// `frugal mem --json ARGS...` on the real binary, parsed (the mem tests of this folder).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run_binary.h"

namespace frugal::cli_test {

inline const std::string kFlashConfig =
    std::string(FRUGAL_SOURCE_DIR) + "/tests/fixtures/configs/deepseek-v4-flash.json";

inline nlohmann::json mem_json(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"mem", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  const RunResult r = run(all);
  EXPECT_EQ(r.rc, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

}  // namespace frugal::cli_test

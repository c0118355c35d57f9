// The model the engine tests run on: the shipped tiny model of this source tree, or the directory
// in FRUGAL_TEST_MODEL_DIR (a model with the same config, e.g. while the shipped one is retrained).
#pragma once

#include <cstdlib>
#include <string>

namespace frugal::engine {

inline std::string test_model_dir() {
  const char* env = std::getenv("FRUGAL_TEST_MODEL_DIR");
  return env != nullptr && *env != '\0' ? env : std::string(FRUGAL_SOURCE_DIR) + "/models/tiny-v4";
}

}  // namespace frugal::engine

// Writes the synthetic checkpoint the v4-random fixtures were generated from:
//   v4_write_random_checkpoint CONFIG_JSON OUT_DIR SEED
// (used by tests/fixtures/v4-random/regen.py; the tests write the same bytes themselves).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/v4/config.h"
#include "model/v4/synth.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CONFIG_JSON OUT_DIR SEED\n", argv[0]);
    return 2;
  }
  auto config = frugal::v4::load_config(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().to_string().c_str());
    return 1;
  }
  frugal::v4::SynthOptions opt;
  opt.seed = std::strtoull(argv[3], nullptr, 10);
  const frugal::Status s = frugal::v4::write_synth_checkpoint(*config, argv[2], opt);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}

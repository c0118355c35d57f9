// RoPE frequencies of one V4 block (reference `precompute_freqs_cis`, doc §2.0) and the cos/sin of
// a position. Blocks with compress ratio 0 (and the MTP block) use rope_theta without YaRN; the
// compressed blocks use compress_rope_theta with YaRN (`Attention.__init__`).
#pragma once

#include <cstdint>
#include <vector>

#include "model/v4/config.h"

namespace frugal::v4 {

class RopeTable {
 public:
  RopeTable() = default;
  // `rope_dim` rotated dims (rope_dim / 2 frequencies).
  RopeTable(int64_t rope_dim, const RopeParams& params);

  int64_t pairs() const { return static_cast<int64_t>(freqs_.size()); }
  const std::vector<float>& freqs() const { return freqs_; }
  // cos/sin[pairs()] of angle(pos, i) = fl32(pos * f_i) (torch.outer + torch.polar in fp32).
  void cos_sin(int64_t pos, float* cos, float* sin) const;

 private:
  std::vector<float> freqs_;
};

}  // namespace frugal::v4

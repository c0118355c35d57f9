#include "model/v4/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace frugal::v4 {

// mirrors precompute_freqs_cis: the frequencies in fp32, the YaRN blend when original_seq_len > 0.
RopeTable::RopeTable(int64_t rope_dim, const RopeParams& p) {
  const int64_t half = rope_dim / 2;
  freqs_.resize(static_cast<size_t>(half));
  const float base = static_cast<float>(p.theta);
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(rope_dim);
    freqs_[static_cast<size_t>(i)] = 1.0f / std::pow(base, e);
  }
  if (p.original_seq_len <= 0) return;
  // find_correction_dim / find_correction_range (python floats = double)
  auto corr = [&](double n_rot) {
    return static_cast<double>(rope_dim) *
           std::log(static_cast<double>(p.original_seq_len) / (n_rot * 2 * std::numbers::pi)) /
           (2 * std::log(p.theta));
  };
  const double low = std::max(std::floor(corr(p.beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(p.beta_slow)), static_cast<double>(rope_dim - 1));
  if (low == high) high += 0.001;
  const float factor = static_cast<float>(p.rope_factor);
  for (int64_t i = 0; i < half; ++i) {
    // linear_ramp_factor in fp32; smooth = 1 - ramp
    const float ramp = std::clamp(
        (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f,
        1.0f);
    const float smooth = 1.0f - ramp;
    float& f = freqs_[static_cast<size_t>(i)];
    f = f / factor * (1.0f - smooth) + f * smooth;
  }
}

void RopeTable::cos_sin(int64_t pos, float* cos, float* sin) const {
  for (size_t i = 0; i < freqs_.size(); ++i) {
    const float angle = static_cast<float>(pos) * freqs_[i];
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
}

}  // namespace frugal::v4

// frugal bench --batch N (bench_batch.cpp): N sequences decoded together by Model::forward_batch,
// each weight read once per step for all of them.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "engine/engine.h"

namespace frugal::cli {

// Aggregate decode tokens/s of `batch` sequences stepped together (medians over reps): each is
// prefilled with its own prompt (the bench prompt with every id shifted by 7919 x its index, so
// that the sequences route to different experts as different users' text does, rather than all
// reading the same six), then `gen` steps of one token each, all in one forward_batch.
Result<double> time_batched_decode(engine::Engine& eng, std::span<const int32_t> prompt,
                                   int64_t gen, int64_t batch, int reps);

}  // namespace frugal::cli

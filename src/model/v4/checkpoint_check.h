// Checks an opened checkpoint against the V4 tensor table: every expected tensor present with
// its dtype and shape, no unexpected tensors, and cheap value checks (e8m0 scale bytes that are
// NaN, tid2eid expert ids out of range). All problems are reported at once, one line each.
#pragma once

#include <cstddef>

#include "core/status.h"
#include "format/safetensors.h"
#include "model/v4/config.h"
#include "model/v4/shard.h"
#include "model/v4/tensor_table.h"

namespace frugal::v4 {

struct CheckOptions {
  // Scan the bytes of every e8m0 scale and every tid2eid table. For V4-Flash this reads about
  // 8.4 GB of routed-expert scales (5% of the checkpoint); the other scanned tensors are small.
  bool scan_values = true;
  // With scan_values: whether the routed experts' scales are scanned too (off when they stream:
  // each expert's codes are checked when it is first read).
  bool scan_routed_experts = true;
  // With scan_values: only the tensors this process of a parallel run holds are scanned (null:
  // all). Every tensor's dtype and shape is checked either way.
  const Shard* shard = nullptr;
  // Problem lines in the message; the rest are counted.
  size_t max_reported = 50;
};

Status check_checkpoint(const TensorTable& table, const format::Checkpoint& checkpoint,
                        const CheckOptions& options = {});

// Builds the table from `config` (which must be valid) and checks against it.
Status check_checkpoint(const DeepSeekV4Config& config, const format::Checkpoint& checkpoint,
                        const CheckOptions& options = {});

}  // namespace frugal::v4

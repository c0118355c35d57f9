// A build without MPI (scripts/setup.sh installs it; the aarch64 cross build has none): one
// process, and asking for more is an error that says so.
#include "parallel/world.h"

namespace frugal::parallel {

Result<std::unique_ptr<v4::Exchange>> create_exchange(const v4::Shard& shard) {
  (void)shard;
  return unsupported(
      "this frugal was built without MPI (install libopenmpi-dev, e.g. scripts/setup.sh, and "
      "rebuild) and cannot run in parallel");
}

ExchangeStats exchange_stats(const v4::Exchange&) { return {}; }
void reset_exchange_stats(v4::Exchange&) {}

Status check_same_run(const std::string&, const std::string&) { return ok_status(); }

Status agree(const Status& local, const std::string&) { return local; }

}  // namespace frugal::parallel

// What every Store backend shares: the wall clock and the checks of
// StoreOptions.
#include "storage/store.h"

#include "common/clock.h"

namespace anomalyd {
namespace {

class WallClock : public Clock {
 public:
  int64_t NowMicros() override { return WallMicros(); }
};

}  // namespace

Clock* SystemClock() {
  static WallClock* clock = new WallClock;  // never destroyed: lives forever
  return clock;
}

Status CheckStoreOptions(const StoreOptions& o) {
  // The bound keeps one stream's reservoir loadable in memory.
  if (o.reservoir_capacity < 1 || o.reservoir_capacity > 100'000'000) {
    return Status::InvalidArgument(
        "reservoir_capacity must be in 1..100000000");
  }
  return Status::OK();
}

}  // namespace anomalyd

// Clock readings shared across anomalyd: daemon, clients, engine, storage.
#ifndef ANOMALYD_COMMON_CLOCK_H_
#define ANOMALYD_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace anomalyd {

// Microseconds since the Unix epoch: event, scored and creation times.
inline int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Microseconds of the monotonic clock: intervals, heartbeats, timers.
inline int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_CLOCK_H_

// EngineClock: the engine's seam to the time of day and the monotonic clock, so
// that tests can drive time-based recalibration without sleeping.
#ifndef ANOMALYD_ENGINE_CLOCK_H_
#define ANOMALYD_ENGINE_CLOCK_H_

#include <cstdint>

#include "common/clock.h"

namespace anomalyd {

// The real clocks (common/clock.h); tests override either. Thread-safe.
class EngineClock {
 public:
  virtual ~EngineClock() = default;
  // Microseconds since the Unix epoch: event and scored times.
  virtual int64_t WallMicros() const { return ::anomalyd::WallMicros(); }
  // Microseconds of the monotonic clock: recalibration timers.
  virtual int64_t SteadyMicros() const { return ::anomalyd::SteadyMicros(); }
  // A process-wide real clock; never null, never freed.
  static const EngineClock* Real() {
    static const EngineClock clock;
    return &clock;
  }
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_CLOCK_H_

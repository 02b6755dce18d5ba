// The one way anomalyd and its clients print a time.
#ifndef ANOMALYD_COMMON_ISO_TIME_H_
#define ANOMALYD_COMMON_ISO_TIME_H_

#include <cstdint>
#include <string>

namespace anomalyd {

// Formats microseconds since the epoch as UTC ISO 8601 (RFC 3339) with
// milliseconds, "2026-03-01T12:00:00.250Z", rounding down (-1 is
// 23:59:59.999 the day before). Times outside years 0000-9999 come out as
// the plain number with a "us" suffix ("9223372036854775807us"). Used for
// every time anomalyctl prints and for the times in alert notifications.
std::string Iso(int64_t us);

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_ISO_TIME_H_
